# syntax=docker/dockerfile:1
# The NixFleet sync server and dashboard in a container: docs/INSTALL.md, "Run in a container".
#
#   docker build -t nixfleet-sync .
#   docker run -d -p 8000:8000 -v nixfleet-data:/data -e NIXFLEET_ADMIN_PASSWORD=… nixfleet-sync
#
# NODE_VERSION: 20 is what the project is tested on. Node 20 is past its end of life
# (2026-04-30); `--build-arg NODE_VERSION=22` (or 24) builds on a maintained Node, which
# better-sqlite3 supports.
ARG NODE_VERSION=20

# --- build: all dependencies, the TypeScript build, then only production dependencies -------
FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /src

# The dependencies first, so that this layer stays cached while only sources change.
# --ignore-scripts skips our own `prepare` (a build, before the sources are here); then the
# install scripts of the two dependencies that have one (package.json's "allowScripts"):
# better-sqlite3, a native module (a prebuilt binary, or compiled with this image's python3
# and g++), and esbuild.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 esbuild

COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime: Node, production node_modules (better-sqlite3 built above, same Debian) and dist
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    NIXFLEET_LISTEN=0.0.0.0:8000 \
    NIXFLEET_DATA_DIR=/data
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY contrib/docker/healthcheck.mjs ./healthcheck.mjs

# The image's files stay root's; the server runs as the image's unprivileged `node` user
# (uid 1000) and writes only /data.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/healthcheck.mjs"]

# SIGTERM drains the server (sockets closed, store flushed); give it `docker stop -t 15`.
STOPSIGNAL SIGTERM
CMD ["node", "dist/server/main.js"]
