# syntax = docker/dockerfile:1.7
from   busybox:latest   as   First
onbuild  add . /app/src
onbuild run --mount=type=cache,target=/c make
ENV A="quoted value" B=unquoted\ escaped C='single $X'
ENV D=$A-${B}
LABEL "com.example.multi"="a \
b"
ARG X
ARG Y=$X-y
WORKDIR ${Y:-fallback}
WORKDIR ${X:+set}
USER ${UID:-1000}:${GID:-1000}
EXPOSE 80 ${PORT:-8080}/tcp
VOLUME ["/v1" , "/v2"]
STOPSIGNAL ${SIG:-SIGQUIT}
COPY --chmod=0755 --link=false [ "a b", "c", "/dst/" ]
ADD --keep-git-dir=true https://github.com/moby/moby.git#v28.5.2 /src
COPY -- --weird-name /x
RUN --network=host --mount=type=secret,id=tok cat /run/secrets/tok
CMD
ENTRYPOINT []
HEALTHCHECK --interval=0s CMD true

FROM first AS second
COPY --from=FIRST /app /app
