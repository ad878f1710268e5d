# syntax=docker/dockerfile:1
# check=skip=all
ARG BASE=busybox
ARG TAG
FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-latest} AS Builder
LABEL a=b "c d"="e f" g='h i'
LABEL legacy value with spaces
MAINTAINER Jane Doe <jane@example.com>
EXPOSE 8080/tcp 53/udp 443
ENV PATH=/opt/bin:$PATH HOME=/root
ENV LEGACY some value
ADD --chown=1:1 --chmod=644 --link https://example.com/x.tar.gz /opt/
ADD --checksum=sha256:abc --unpack=false a.tar /a/
COPY --from=base --chown=app:app ["src dir/", "/dst/"]
COPY --exclude=*.md --exclude=*.txt . /app
ENTRYPOINT ["/bin/app", "--flag"]
CMD echo "$HOME" && \
    ls -l
VOLUME ["/data", "/logs"]
VOLUME /cache /tmp/x
USER app:app
WORKDIR /app/$DIR
ARG ONE TWO=2 THREE="three 3"
ONBUILD RUN echo triggered
ONBUILD COPY . /src
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1
HEALTHCHECK CMD ["/bin/check", "-q"]
HEALTHCHECK NONE
SHELL ["/bin/bash", "-c"]
RUN --mount=type=cache,target=/root/.cache --network=none make
RUN ["/bin/echo", "exec form"]
