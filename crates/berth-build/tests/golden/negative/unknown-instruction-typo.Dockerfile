FROM busybox
FORM x
