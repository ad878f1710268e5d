FROM busybox
ENV a=b c
