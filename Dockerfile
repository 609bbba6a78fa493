# syntax=docker/dockerfile:1
# Two images from one source tree, installed the same way as a local install:
#   docker build --target operator -t modelrollout-operator:0.1.0 .   # pip install .[operator]
#   docker build --target serving  -t modelrollout-serving:0.1.0 .    # pip install .[serving,evaluate]
# The operator image carries no TensorFlow and no scikit-learn.

ARG PYTHON=python:3.11-slim-bookworm

FROM ${PYTHON} AS source
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src

# One install path: a wheel of this tree plus the extra each image needs.
FROM source AS operator-build
RUN pip install --no-cache-dir --root-user-action=ignore --prefix=/install ".[operator]"

FROM source AS serving-build
RUN pip install --no-cache-dir --root-user-action=ignore --prefix=/install ".[serving,evaluate]"

FROM ${PYTHON} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin modelrollout
WORKDIR /tmp

FROM runtime AS operator
COPY --from=operator-build /install /usr/local
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["modelrollout"]
CMD ["operator", "--all-namespaces"]

FROM runtime AS serving
COPY --from=serving-build /install /usr/local
USER 65532:65532
EXPOSE 8500 8501
ENTRYPOINT ["modelrollout"]
CMD ["serve", "--help"]
