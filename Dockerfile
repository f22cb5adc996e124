# Locus: the framework, the CLI and the executor in one image.
#
#   docker build -t locus:0.1.0 .
#   docker run --rm locus:0.1.0 mesos probe --master http://mesos-master:5050
#
# The same image is the executor image: Mesos agents run it with the command
# `locus executor` (see docs/operator-guide.md, "How executors reach agents").
# Node is pinned by version so a rebuild gives the same runtime.
ARG NODE_VERSION=20.19.2

FROM node:${NODE_VERSION}-bookworm-slim AS build
# gcc builds locus-spawn, the native container launcher (scripts/build-native.sh).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so editing the sources does not re-run npm ci.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.base.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
COPY proto ./proto
COPY examples ./examples
COPY scripts/build-native.sh ./scripts/build-native.sh
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim
# Storage clients the backends shell out to or mount with: the ceph CLI and
# ceph-fuse (RADOS maps, CephFS), the GlusterFS FUSE client and getfattr
# (trusted.glusterfs.pathinfo). Build with --build-arg STORAGE_CLIENTS= for a
# smaller image that only speaks WebHDFS and local storage.
ARG STORAGE_CLIENTS="ceph-common ceph-fuse glusterfs-client attr"
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tini ${STORAGE_CLIENTS} \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/locus
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/proto ./proto
COPY --from=build /src/examples ./examples
# `locus` on PATH, so the executor command and `docker exec ... locus jobs` work.
RUN printf '#!/bin/sh\nexec node /opt/locus/dist/src/cli/main.js "$@"\n' > /usr/local/bin/locus \
 && chmod 0755 /usr/local/bin/locus \
 && mkdir -p /var/lib/locus
ENV NODE_ENV=production
# HTTP API and gRPC API of `locus framework`.
EXPOSE 8080 9090
# tini reaps the children that executors and `locus exec` start, and forwards
# SIGTERM so a framework shuts down cleanly on `docker stop`.
ENTRYPOINT ["/usr/bin/tini", "--", "locus"]
CMD ["--help"]
