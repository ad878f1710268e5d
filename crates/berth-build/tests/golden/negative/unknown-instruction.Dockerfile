FROM busybox
FOOBAR bar
