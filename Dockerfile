# The one `bashu` binary in a small, non-root runtime image.
#   docker build -t bashu:0.1.0 .
# Build stage: the pinned Rust toolchain; protobuf is compiled by protox, so no protoc.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p bashu -p bashuctl \
 && cp target/release/bashu target/release/bashuctl /usr/local/bin/

# Runtime: distroless with glibc and CA certificates, no shell, user 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/bashu /usr/local/bin/bashu
COPY --from=build /usr/local/bin/bashuctl /usr/local/bin/bashuctl
USER 65532:65532
EXPOSE 8080 50051
ENTRYPOINT ["/usr/local/bin/bashu"]
CMD ["--target", "all"]
