# syntax=docker/dockerfile:1
# A small static image: the player libraries are fetched from npm at the pinned
# versions, the binary is built without cgo, and the result runs as a non-root user
# on an empty base.

FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
RUN mkdir -p vendor \
 && cp node_modules/hls.js/dist/hls.min.js vendor/ \
 && cp node_modules/dashjs/dist/modern/umd/dash.all.min.js vendor/ \
 && cp node_modules/shaka-player/dist/shaka-player.compiled.js vendor/

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=web /src/web/vendor/ web/vendor/
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/rtmpgate ./cmd/rtmpgate

FROM scratch
COPY --from=build /out/rtmpgate /rtmpgate
USER 65532:65532
EXPOSE 1935 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/rtmpgate", "healthcheck"]
ENTRYPOINT ["/rtmpgate"]
