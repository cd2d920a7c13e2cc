"""[debug_view]: the live picture of what each camera's analytics see, on the metrics port.

Off by default. The view shows the cameras' pictures, so it answers clients on this host only
unless `allow_remote` is set; then a `token` (sent as `Authorization: Bearer <token>` or
`?token=<token>`) keeps strangers out.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from har_daemon.config.types import Section


class DebugViewConfig(Section):
    """[debug_view]"""

    enabled: bool = Field(
        False,
        title="Debug view",
        description="Serve /, /cameras/<name>/latest.jpg and /cameras/<name>/stream.mjpeg on "
        "the [metrics] port (which must be set).",
    )
    allow_remote: bool = Field(
        False,
        title="Remote viewers",
        description="false: only clients on this host (127.0.0.1, ::1) get the view, whatever "
        "address the metrics server listens on; true: any client that can reach the port (set "
        "a token).",
    )
    token: SecretStr | None = Field(
        None,
        min_length=16,
        max_length=256,
        title="Access token",
        description="Required from every viewer when set: 'Authorization: Bearer <token>' or "
        "?token=<token>. Prefer HAR_DEBUG_VIEW__TOKEN over the file; it is never logged.",
    )
    stream_fps: float = Field(
        5.0,
        gt=0,
        le=30,
        title="Stream rate",
        description="Most frames per second sent to each MJPEG viewer (new analysed frames only).",
    )
    jpeg_quality: int = Field(
        80, ge=10, le=100, title="JPEG quality", description="Quality of the view's JPEGs."
    )
