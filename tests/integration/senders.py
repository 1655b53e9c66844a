"""Real RTP senders for the daemon tests: GStreamer pipelines through rtpbin (RTCP SR on),
RTP and RTCP multiplexed onto one port as an SFU's plain transport sends them."""

VIDEO = {
    "vp8": ["vp8enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=30", "!",
            "rtpvp8pay", "pt=96", "mtu=1200"],
    "vp9": ["vp9enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=30", "!",
            "rtpvp9pay", "pt=98", "mtu=1200"],
    "h264": ["x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=30", "!",
             "video/x-h264,profile=constrained-baseline", "!", "rtph264pay", "pt=102", "mtu=1200",
             "config-interval=-1"],
}
PT = {"vp8": 96, "vp9": 98, "h264": 102, "opus": 111}


def gst_peer(port, video=None, audio=False, video_ssrc=0, audio_ssrc=0, seconds=10,
             host="127.0.0.1", pattern="ball"):
    """One peer: optional video of the given codec and optional Opus, for `seconds`."""
    cmd = ["gst-launch-1.0", "-q", "rtpbin", "name=rb"]
    pad = 0
    if video:
        cmd += ["videotestsrc", "is-live=true", f"num-buffers={seconds * 30}", f"pattern={pattern}", "!",
                "video/x-raw,width=320,height=240,framerate=30/1", "!", *VIDEO[video],
                f"ssrc={video_ssrc}", "!", f"rb.send_rtp_sink_{pad}",
                f"rb.send_rtp_src_{pad}", "!", "udpsink", f"host={host}", f"port={port}",
                f"rb.send_rtcp_src_{pad}", "!", "udpsink", f"host={host}", f"port={port}",
                "sync=false", "async=false"]
        pad += 1
    if audio:
        cmd += ["audiotestsrc", "is-live=true", f"num-buffers={seconds * 48000 // 1024}", "!",
                "audio/x-raw,rate=48000,channels=2", "!", "opusenc", "!", "rtpopuspay", "pt=111",
                f"ssrc={audio_ssrc}", "!", f"rb.send_rtp_sink_{pad}",
                f"rb.send_rtp_src_{pad}", "!", "udpsink", f"host={host}", f"port={port}",
                f"rb.send_rtcp_src_{pad}", "!", "udpsink", f"host={host}", f"port={port}",
                "sync=false", "async=false"]
    return cmd
