# The image the silos in compose.yaml run: the repository with its dependencies installed, run
# from its TypeScript sources with tsx (the silos run `src/cli/bin.ts silo`, as `npm run silo`).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
ENTRYPOINT ["node", "--import", "tsx"]
