"""Small pieces every layer uses (routeros, models, tasks, web); they import nothing of ours.

`backoff.py`: retry delays (`Backoff`). `text.py`: Redis replies as text (`as_text`).
"""
