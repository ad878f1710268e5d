ARG GO=1.22
FROM golang:${GO} AS build
WORKDIR /src
COPY . .
RUN go build -o /out/app .

FROM busybox AS test
COPY --from=build /out/app /app
RUN /app -test

FROM alpine:3 AS docs
RUN echo docs > /docs

FROM scratch
COPY --from=build /out/app /app
COPY --from=2 /docs /docs
ENTRYPOINT ["/app"]
