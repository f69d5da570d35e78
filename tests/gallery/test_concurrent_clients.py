"""Eight clients at once against a real server for a minute, each on its own keep-alive
connection, mixing every kind of change with probes and stats.

Afterwards the database, the index and the files agree, and no client saw a
server error or a reset connection.
"""

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import httpx

from access_support import CASE
from lineup_processes import Service, lineup_env, services

CLIENTS = 8
DURATION_S = 60.0
PEOPLE = ("Emma_Watson", "Heidi_Klum", "Justin_Timberlake", "Monica_Seles", "Sarah_Hughes")


class Client(threading.Thread):
    """One client doing a random mix of operations until the deadline."""

    def __init__(
        self, number: int, service: Service, faces_dir: Path, deadline: float, subjects: list[int]
    ) -> None:
        super().__init__(name=f"client-{number}")
        self.random = random.Random(number)
        self.service, self.faces_dir, self.deadline = service, faces_dir, deadline
        self.statuses: Counter[int] = Counter()
        self.problems: list[str] = []  # connection errors and wrong answers
        # Shared by every client, so that deletions meet other clients' enrollments.
        self.subjects = subjects

    @property
    def operations(self) -> tuple[Callable[[httpx.Client], httpx.Response | None], ...]:
        """Changes and reads, enrollment and probes twice as likely as the rest."""
        return (
            *(self.create, self.enroll, self.enroll, self.probe, self.probe),
            *(self.delete_face, self.delete_subject, self.stats),
        )

    def run(self) -> None:
        with self.service.client() as http:
            while time.monotonic() < self.deadline:
                operation = self.random.choice(self.operations)
                try:
                    response = operation(http)
                except Exception as error:  # a reset connection, an answer that is not JSON
                    self.problems.append(f"{operation.__name__}: {error!r}")
                    continue
                if response is not None:
                    self.statuses[response.status_code] += 1

    def subject(self) -> int | None:
        """Any client's subject, or None while there is none."""
        with suppress(IndexError):  # emptied by another client meanwhile
            return self.random.choice(self.subjects)
        return None

    def photo(self) -> tuple[str, bytes, str]:
        person = self.random.choice(PEOPLE)
        path = (
            self.faces_dir / "lfw_mini" / person / f"{person}_{self.random.randint(1, 5):04d}.jpg"
        )
        return path.name, path.read_bytes(), "image/jpeg"

    def create(self, http: httpx.Client) -> httpx.Response:
        response = http.post("/subjects", json={"display_name": f"{self.name} subject"})
        if response.status_code == 201:
            self.subjects.append(response.json()["id"])
        return response

    def enroll(self, http: httpx.Client) -> httpx.Response | None:
        subject = self.subject()
        if subject is None:
            return self.create(http)
        files = [("files", self.photo()) for _ in range(self.random.randint(1, 2))]
        return http.post(f"/subjects/{subject}/photos?face=largest", files=files)

    def probe(self, http: httpx.Client) -> httpx.Response:
        return http.post("/probe", files={"image": self.photo()}, data=CASE)

    def delete_face(self, http: httpx.Client) -> httpx.Response | None:
        subject = self.subject()
        if subject is None:
            return None
        faces = http.get(f"/subjects/{subject}/faces")
        if faces.status_code != 200 or not faces.json():
            return faces
        return http.delete(f"/faces/{self.random.choice(faces.json())['id']}")

    def delete_subject(self, http: httpx.Client) -> httpx.Response | None:
        subject = self.subject()
        if subject is None or len(self.subjects) < 2:
            return None
        response = http.delete(f"/subjects/{subject}")
        with suppress(ValueError):  # another client deleted it too
            self.subjects.remove(subject)
        return response

    def stats(self, http: httpx.Client) -> httpx.Response:
        response = http.get("/stats")
        body = response.json()
        if response.status_code != 200:
            self.problems.append(f"stats: {response.status_code} {body}")
        elif body["faces"] != body["index_size"]:  # one snapshot, always
            self.problems.append(f"stats not one snapshot: {body}")
        return response


def test_eight_clients_for_a_minute(tmp_path: Path, faces_dir: Path) -> None:
    data = tmp_path / "data"
    with services(lineup_env(data), tmp_path / "logs", 1) as (service,):
        deadline = time.monotonic() + DURATION_S
        subjects: list[int] = []
        clients = [Client(n, service, faces_dir, deadline, subjects) for n in range(CLIENTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=DURATION_S + 300)
        statuses = sum((client.statuses for client in clients), Counter())
        problems = [problem for client in clients for problem in client.problems]
        print(f"\n{sum(statuses.values())} answers in {DURATION_S:.0f} s: {dict(statuses)}")
        assert problems == []
        assert not [status for status in statuses if status >= 500], statuses
        assert statuses[200] > 0 and statuses[201] > 0 and statuses[204] > 0
        stats = service.get("/stats")
    photos = {p.name for p in (data / "photos").iterdir()}
    chips = {p.name for p in (data / "chips").iterdir()}
    assert stats["faces"] == stats["index_size"] == len(chips)
    assert stats["photos"] == len(photos)
