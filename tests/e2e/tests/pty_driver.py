#!/usr/bin/env python3
"""Drives a command through a real pseudo-terminal for the interactive e2e tests.

Usage: pty_driver.py SPEC.json. SPEC: {"argv": [...], "rows": 24, "cols": 80,
"timeout": 30, "steps": [...]} where each step is one of
  {"expect": "text"}     wait until the text appears after the previous match
  {"send": "text"}       type it (Python escapes in the JSON, e.g. "\\u0003" for Ctrl-C)
  {"resize": [r, c]}     change the window size (the client gets SIGWINCH)
  {"sleep": seconds}
  {"signal": n}          send signal n to the client
After the last step the command is read until it exits (or the timeout). Prints one
JSON object: {"output": all bytes as text, "code": exit code or null, "failed": the
step that timed out or null}.
"""
import fcntl, json, os, pty, select, signal, struct, sys, termios, time


def main():
    spec = json.load(open(sys.argv[1]))
    deadline = time.time() + spec.get("timeout", 30)
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(spec["argv"][0], spec["argv"])

    def winsize(rows, cols):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    winsize(spec.get("rows", 24), spec.get("cols", 80))
    out = bytearray()
    eof = False

    def pump(wait):
        nonlocal eof
        if eof:
            time.sleep(wait)
            return
        r, _, _ = select.select([fd], [], [], wait)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if data:
                out.extend(data)
            else:
                eof = True

    mark = 0
    failed = None
    for step in spec["steps"]:
        if "expect" in step:
            want = step["expect"].encode()
            while True:
                at = out.find(want, mark)
                if at >= 0:
                    mark = at + len(want)
                    break
                if time.time() > deadline or eof:
                    failed = step
                    break
                pump(0.05)
            if failed:
                break
        elif "send" in step:
            os.write(fd, step["send"].encode())
        elif "resize" in step:
            winsize(*step["resize"])
        elif "sleep" in step:
            end = time.time() + step["sleep"]
            while time.time() < end:
                pump(max(0.0, min(0.05, end - time.time())))
        elif "signal" in step:
            os.kill(pid, step["signal"])
    code = None
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        pump(0.05)
    if code is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    else:
        while not eof and time.time() < deadline:
            pump(0.05)
    print(json.dumps({"output": out.decode("utf-8", "replace"), "code": code, "failed": failed}))


main()
