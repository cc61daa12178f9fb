# syntax=docker/dockerfile:1
# The interface service: partner intake, EMR delivery, its consumer.
#
#   docker build -f deploy/interface.Dockerfile -t care-relay-interface .
#
# Build from the repository root (the context is filtered by .dockerignore: only
# package.json, package-lock.json and services/ go in). Node 24 runs the .ts
# sources directly (type stripping), so there is no build step.
#
# At run time the container needs nothing from the network but SQS and the EMR
# endpoint, writes nothing outside /tmp and the audit folder, and runs as `node`
# (uid 1000). It can run with a read-only root file system: mount
#   /keys                         this service's own key folder, read-only
#   /var/lib/care-relay/audit     the audit trail: the one writable mount besides /tmp
# See docs/deploy.md.

# Pin the exact patch release; add `@sha256:<digest>` for a reproducible build.
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, exactly as locked; no lifecycle scripts run.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM node:24.21.0-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    KEYS_DIR=/keys \
    AUDIT_FILE=/var/lib/care-relay/audit/interface.jsonl
WORKDIR /app
# Code and dependencies belong to root: the service (uid node) can read, not change, them.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY services ./services
# The audit folder is the only place the service writes (besides /tmp); a named
# volume mounted here takes this ownership on first use.
RUN mkdir -p /var/lib/care-relay/audit \
 && chown node:node /var/lib/care-relay/audit \
 && chmod 0700 /var/lib/care-relay/audit
VOLUME ["/var/lib/care-relay/audit"]
USER node
EXPOSE 8080
# Slim images have no curl: Node itself asks /healthz. With TLS configured it speaks
# HTTPS to its own loopback port, where certificate names cannot match.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const s=Boolean(process.env.TLS_CERT_FILE);require(s?'node:https':'node:http').get({host:'127.0.0.1',port:process.env.PORT,path:'/healthz',timeout:4000,rejectUnauthorized:false},(r)=>process.exit(r.statusCode===200?0:1)).on('timeout',()=>process.exit(1)).on('error',()=>process.exit(1))"]
# A young generation sized for small messages; --expose-gc lets a streamed large document ask for a
# scavenge every 4 MiB, which keeps its memory small (services/core/runtime/nodeFlags.ts).
ENTRYPOINT ["node", "--max-semi-space-size=8", "--expose-gc", "services/interface/main.ts"]
