"""An on-disk cache of LLM answers keyed by (model, prompt), so reruns and resumed runs cost no calls."""
from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path


class AnswerCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False)
        self._connection.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT, answer TEXT)")
        self._connection.commit()

    @staticmethod
    def key(model: str, prompt: str) -> str:
        return hashlib.sha256(f"{model}\0{prompt}".encode()).hexdigest()

    def get(self, model: str, prompt: str) -> str | None:
        with self._lock:
            row = self._connection.execute("SELECT answer FROM answers WHERE key = ?", (self.key(model, prompt),)).fetchone()
        return None if row is None else row[0]

    def put(self, model: str, prompt: str, answer: str) -> None:
        """Committed at once: an answer paid for survives a crash a moment later."""
        with self._lock:
            self._connection.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)",
                                     (self.key(model, prompt), model, answer))
            self._connection.commit()

    def close(self) -> None:
        self._connection.close()
