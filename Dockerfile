# The image the silos in compose.yaml run: the repository with its dependencies installed.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund
COPY . .
ENTRYPOINT ["node", "--import", "tsx"]
