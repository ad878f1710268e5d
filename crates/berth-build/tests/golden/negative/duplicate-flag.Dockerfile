FROM busybox
COPY --from=a --from=b a b
