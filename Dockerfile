# Node 24: an LTS line maintained until April 2028 (Node 20 reached its end of life in April 2026).
# Build stage: compile TypeScript with the dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The client package is a workspace of the root: npm ci needs its manifest, not its source.
COPY client/package.json ./client/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
COPY scripts/copy-assets.mjs ./scripts/
RUN npm run build && npm prune --omit=dev

# Runtime stage: only production dependencies and the compiled output, as an unprivileged user.
FROM node:24-bookworm-slim
# DATA_DIR holds the embedded database (when DATABASE_URL is unset), generated keys and development mail:
# a directory the unprivileged user owns, and a volume so it outlives the container.
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/data
WORKDIR /app
RUN mkdir -p /data && chown node:node /data
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node
VOLUME /data
EXPOSE 3000
# Liveness, not readiness: a Redis or database outage makes every replica unready at once, and an
# orchestrator acting on this check would kill healthy replicas that recover by themselves.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD node -e "fetch('http://127.0.0.1:3000/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/main.js"]
