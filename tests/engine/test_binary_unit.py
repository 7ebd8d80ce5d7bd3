"""Binary content rules in isolation: ``maxBinarySize`` sizes, the media-type precedence, the
:class:`Relayed` case, and the OpenAPI export of ``responses``/``responseBinary``."""

from __future__ import annotations

import pytest

from harness import run_cli
from naftiko.consumes.formats import binary_media_type, check_media_type, format_size, parse_binary_size
from naftiko.engine.result import Relayed


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512KiB", 524288),
        ("10MiB", 10485760),
        ("1.5MiB", 1572864),
        ("1GiB", 1024**3),
        ("100B", 100),
        ("4096", 4096),  # no unit: bytes, as the reference engine reads it
        (4096, 4096),  # an unquoted YAML number
        (" 2KiB ", 2048),
    ],
)
def test_sizes(text, size):
    assert parse_binary_size(text) == size


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("10MB", "not a size"),
        ("10 MiB", "not a size"),
        ("10mib", "not a size"),
        ("-1KiB", "not a size"),
        ("", "not a size"),
        (True, "not a size"),
        ("0B", "at least 1 byte"),
        ("0.1B", "at least 1 byte"),
        ("1.5GiB", "above 1GiB"),
    ],
)
def test_bad_sizes(text, why):
    with pytest.raises(ValueError, match=why):
        parse_binary_size(text)


def test_sizes_are_written_back_in_the_largest_exact_unit():
    assert format_size(1024) == "1KiB"
    assert format_size(10 * 1024 * 1024) == "10MiB"
    assert format_size(1536) == "1536B"
    assert format_size(1024**3) == "1GiB"


def test_media_type_precedence():
    assert binary_media_type("image/png", "image/jpeg", "application/octet-stream") == "image/png"
    assert binary_media_type(None, "image/jpeg", "application/octet-stream") == "image/jpeg"
    assert binary_media_type(None, None, "application/pdf") == "application/pdf"
    assert binary_media_type(None, None, "") == "application/octet-stream"
    assert binary_media_type(" ", None, None) == "application/octet-stream"


@pytest.mark.parametrize("good", ["image/png", "application/vnd.api+json", 'text/plain; charset="utf-8"', "a/b; x=1; y=2"])
def test_media_types_a_content_type_can_carry(good):
    assert check_media_type(good, "outputMediaType") is None


@pytest.mark.parametrize("bad", ["jpeg", "image/", "image/png\n", "image/png\r\nX-Evil: 1", 'a/b; x="\n"', 42, ""])
def test_media_types_refused(bad):
    assert "is not a media type" in (check_media_type(bad, "outputMediaType") or "")


def test_relayed_media_type():
    binary = Relayed(200, b"\x00", "application/octet-stream", {}, True, None)
    assert binary.media_type() == "application/octet-stream"
    assert binary.media_type("image/gif") == "image/gif"
    declared = Relayed(200, b"\x00", "application/octet-stream", {}, True, "image/png")
    assert declared.media_type("image/gif") == "image/png"
    text = Relayed(200, b"{}", "application/json", {}, False, None)
    assert text.media_type("image/gif") == "application/json"  # a contract type is for binary bodies only
    assert Relayed(200, b"{}", "application/json", {}, False, "application/vnd.x+json").media_type() == (
        "application/vnd.x+json"
    )


EXPORTED = """\
ikanos: "1.0.0-beta5"
info:
  display: Photos
  description: Photo bytes.
capability:
  consumes:
    - type: http
      namespace: photos
      baseUri: https://photos.example.org
      resources:
        photo:
          path: /photos/{id}
          operations:
            download:
              method: GET
              outputRawFormat: binary
              outputMediaType: image/jpeg
  exposes:
    - type: rest
      namespace: photos-rest
      port: 18433
      resources:
        image:
          path: /photos/{id}/image
          operations:
            get:
              method: GET
              call: photos.download
              responses:
                "200":
                  description: Original image bytes.
                  content:
                    image/jpeg:
                      binary: true
                "404":
                  description: Photo not found.
                  content:
                    application/json:
                      schema:
                        type: object
                        properties:
                          error:
                            type: string
        thumbnail:
          path: /photos/{id}/thumbnail
          operations:
            get:
              method: GET
              call: photos.download
              responseBinary:
                status: 203
                mediaType: image/png
                description: A thumbnail.
"""


def test_openapi_export_of_declared_responses(tmp_path):
    import yaml

    path = tmp_path / "photos.yaml"
    path.write_text(EXPORTED)
    ran = run_cli(["export", "openapi", str(path)])
    assert ran.returncode == 0, ran.stderr
    doc = yaml.safe_load(ran.stdout)
    image = doc["paths"]["/photos/{id}/image"]["get"]["responses"]
    assert image["200"] == {
        "description": "Original image bytes.",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    }
    assert image["404"]["content"]["application/json"]["schema"]["properties"] == {"error": {"type": "string"}}
    assert image["502"] == {"$ref": "#/components/responses/BadGateway"}  # the engine's own problems stay
    thumb = doc["paths"]["/photos/{id}/thumbnail"]["get"]["responses"]
    assert "200" not in thumb
    assert thumb["203"] == {
        "description": "A thumbnail.",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    }
