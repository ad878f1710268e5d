FROM busybox
COPY --from=a -- --x b
COPY --chown=1 --from b c
