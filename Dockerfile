# The ganwatch server (no PyTorch: the trainer and the client run where training runs).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor monitor
COPY trainer_client trainer_client
COPY ganwatch ganwatch
COPY web web
RUN pip install --no-cache-dir ".[postgres]"
ENV GANWATCH_HOST=0.0.0.0 GANWATCH_PORT=8765 GANWATCH_DATA_DIR=/data
EXPOSE 8765
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8765/api/v1/health', timeout=2)"
CMD ["ganwatch", "serve"]
