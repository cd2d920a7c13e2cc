#!/usr/bin/python3
"""Serve a raw I420 video file over RTSP, looping it forever (run by Debian's /usr/bin/python3).

Started by `tests.infra.rtsp_server.RtspServer`, not by hand. It needs python3-gi and
gir1.2-gst-rtsp-server-1.0, which exist only for the system interpreter, hence a separate script.

The frames come from a raw yuv420p file (decoded once by ffmpeg) through an appsrc whose
timestamps keep increasing across loops, then x264enc (constrained baseline, no B-frames, a key
frame every second) and rtph264pay. Re-encoding a seamless raw loop avoids the timestamp jumps
and decoder resets that looping a demuxed MP4 would put into the stream.

Prints "READY <port>" on stdout once listening; exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import mmap
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--raw", required=True, help="raw yuv420p frames, back to back")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--fps", required=True, help="frame rate as N/D")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--mount", default="/stream")
    p.add_argument("--quantizer", type=int, default=21, help="x264 constant QP")
    return p.parse_args(argv)


class LoopingSource:
    """Feeds one media's appsrc with frames from the shared raw file, looping forever."""

    def __init__(self, frames: mmap.mmap, frame_size: int, count: int, fps_n: int, fps_d: int):
        self.frames = frames
        self.frame_size = frame_size
        self.count = count
        self.fps_n = fps_n
        self.fps_d = fps_d
        self.n = 0

    def on_need_data(self, appsrc: Gst.Element, _length: int) -> None:
        i = self.n % self.count
        data = self.frames[i * self.frame_size : (i + 1) * self.frame_size]
        buf = Gst.Buffer.new_wrapped(data)
        buf.pts = Gst.util_uint64_scale(self.n, Gst.SECOND * self.fps_d, self.fps_n)
        buf.duration = Gst.util_uint64_scale(Gst.SECOND, self.fps_d, self.fps_n)
        self.n += 1
        appsrc.emit("push-buffer", buf)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    fps_n, _, fps_d = args.fps.partition("/")
    fps_n, fps_d = int(fps_n), int(fps_d or 1)
    frame_size = args.width * args.height * 3 // 2
    Gst.init(None)

    with open(args.raw, "rb") as f:
        frames = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    count = len(frames) // frame_size
    if count == 0:
        print(f"no whole {args.width}x{args.height} frame in {args.raw}", file=sys.stderr)
        return 2

    key_int = max(1, round(fps_n / fps_d))
    caps = (
        f"video/x-raw,format=I420,width={args.width},height={args.height},framerate={fps_n}/{fps_d}"
    )
    launch = (
        f"( appsrc name=src is-live=true format=time caps={caps} "
        "! queue max-size-buffers=4 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast pass=quant quantizer={args.quantizer} "
        f"key-int-max={key_int} bframes=0 "
        "! video/x-h264,profile=constrained-baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)

    def on_media_configure(_factory: GstRtspServer.RTSPMediaFactory, media) -> None:
        appsrc = media.get_element().get_child_by_name("src")
        source = LoopingSource(frames, frame_size, count, fps_n, fps_d)
        appsrc.connect("need-data", source.on_need_data)
        # Keep the source alive as long as the media.
        media.looping_source = source

    factory.connect("media-configure", on_media_configure)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on {args.address}:{args.port}", file=sys.stderr)
        return 3

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, loop.quit)
    print(f"READY {args.port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
