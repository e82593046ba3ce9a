"""sdplay's server: an HTTP job API (FastAPI, OpenAPI at /docs) and the Gradio page mounted on it,
both in front of one job queue that runs engine jobs on one worker thread over the loaded model.

A front door only: requests become engine Jobs (the settings classes validate them); the server
adds what only a server needs: who may call (auth.py), which files a request may name and how
big a job may be (policy.py), uploads (uploads.py) and the queue (queue.py).
Imported only by `sdplay serve` / `sdplay ui` (the optional `sdplay[ui]` extra).
"""
