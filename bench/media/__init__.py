"""The media room: reading and writing video, frames, images, masks and GIF previews (`video_io`).

Small utilities without harness knowledge, shared by suites, the runner, reports, the study and
plug-ins. It imports only the interfaces room (`bench.api`).
"""
