"""Confluent Schema Registry access for the serde, through confluent-kafka's own client.

Only two calls matter on the data path: register (or look up) a schema under a subject to get its
id when encoding, and fetch a schema by id when decoding. Both are cached by the library client and
again by :class:`schemas.serde.AvroSerde`, so the registry sees one request per subject and per id.
Library errors become :class:`SerdeError` (bad data, e.g. an unknown id) or
:class:`SchemaRegistryUnavailable` (retriable: the registry could not be reached).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schemas.framing import SerdeError

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryError


class SchemaRegistryUnavailable(SerdeError):
    """The registry did not answer; the same message may decode once it is back."""

    retriable = True


class ConfluentRegistry:
    """Register and fetch Avro schemas in a Confluent Schema Registry at ``url``."""

    def __init__(self, url: str, timeout_s: float = 10.0, max_retries: int = 2) -> None:
        # confluent_kafka.schema_registry pulls in authlib and httpx2: import only when a registry is used.
        from confluent_kafka.schema_registry import SchemaRegistryClient, SchemaRegistryError

        self.url = url
        self._client: Any = SchemaRegistryClient(
            {"url": url, "timeout": timeout_s, "max.retries": max_retries}
        )
        self._registry_error: type[SchemaRegistryError] = SchemaRegistryError

    def register(self, subject: str, schema_str: str) -> int:
        """Return the id of ``schema_str`` under ``subject``, registering it if it is new there."""
        from confluent_kafka.schema_registry import Schema

        try:
            return int(self._client.register_schema(subject, Schema(schema_str, "AVRO")))
        except self._registry_error as exc:
            raise SerdeError(
                f"schema registry {self.url} refused the schema for subject {subject!r}: {exc}"
            ) from exc
        except Exception as exc:
            raise SchemaRegistryUnavailable(
                f"schema registry {self.url} unreachable ({subject!r}): {exc}"
            ) from exc

    def schema_str(self, schema_id: int) -> str:
        """Return the schema text of ``schema_id``; :class:`SerdeError` if the registry does not know it."""
        try:
            schema = self._client.get_schema(schema_id)
        except self._registry_error as exc:
            if exc.http_status_code == 404:
                raise SerdeError(f"unknown schema id {schema_id} in registry {self.url}: {exc}") from exc
            raise SchemaRegistryUnavailable(
                f"schema registry {self.url} failed on id {schema_id}: {exc}"
            ) from exc
        except Exception as exc:
            raise SchemaRegistryUnavailable(
                f"schema registry {self.url} unreachable (id {schema_id}): {exc}"
            ) from exc
        if schema.schema_type not in (None, "AVRO"):
            raise SerdeError(f"schema id {schema_id} is a {schema.schema_type} schema, not Avro")
        return str(schema.schema_str)

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.close()
