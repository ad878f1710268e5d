/* The hello-world test image's only program: prints a greeting and exits 0.
 * Built with `gcc -static -Os` and stripped by make-images.py, so the image
 * needs nothing but this one file. write(2) instead of stdio keeps it small. */
#include <unistd.h>

static const char greeting[] =
    "\n"
    "Hello from berth!\n"
    "This message shows that your installation appears to be working correctly.\n"
    "\n"
    "To generate this message, berth took the following steps:\n"
    " 1. The client contacted the berth daemon.\n"
    " 2. The daemon found the \"hello-world\" image, loaded from a local archive.\n"
    " 3. The daemon created a new container from that image which runs the\n"
    "    executable that produced the output you are currently reading.\n"
    " 4. The daemon streamed that output to the client, which sent it\n"
    "    to your terminal.\n"
    "\n";

int main(void) {
    const char *p = greeting;
    size_t left = sizeof(greeting) - 1;
    while (left > 0) {
        ssize_t n = write(1, p, left);
        if (n <= 0)
            return 1;
        p += n;
        left -= (size_t)n;
    }
    return 0;
}
