"""478-point 3D face landmarks with mediapipe's bundled face mesh (0.10.21)."""

from __future__ import annotations

import numpy as np

from nerfhead.log import get_logger

log = get_logger(__name__)
N_LANDMARKS = 478


class FaceMeshTracker:
    """Track one face through a sequence of RGB frames.

    ``video=True`` uses mediapipe's tracking mode (detection only when the face is lost),
    which is faster and steadier on video; ``video=False`` detects on every image.
    When several faces are visible the largest is returned and :attr:`max_faces_seen`
    records how many there were.

    Landmarks are pixels: x, y in the image given, z in the same pixel scale as x
    (depth relative to the head's centre, larger = farther from the camera).
    """

    def __init__(self, video: bool = True, max_faces: int = 4, min_confidence: float = 0.5) -> None:
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )
        self.max_faces_seen = 0

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478, 3) float32 pixel landmarks of the largest face in ``rgb``, or None."""
        h, w = rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(rgb))
        faces = result.multi_face_landmarks or []
        if not faces:
            return None
        self.max_faces_seen = max(self.max_faces_seen, len(faces))
        arrays = [np.array([(p.x * w, p.y * h, p.z * w) for p in f.landmark], dtype=np.float32) for f in faces]
        if len(arrays) == 1:
            return arrays[0]
        areas = [np.ptp(a[:, 0]) * np.ptp(a[:, 1]) for a in arrays]
        return arrays[int(np.argmax(areas))]

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceMeshTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track_video(path, fps: float, label: str = "tracking", count: int | None = None
                ) -> tuple[np.ndarray, tuple[int, int], int]:
    """Track the frames of the video ``path`` (at ``fps``; the first ``count`` of them when given)
    in full: (n, 478, 3) pixel landmarks (NaN where no face), the frame size (height, width) and
    the most faces seen in one frame."""
    from nerfhead.io.video import frame_count, iter_frames
    from nerfhead.log import progress, quiet_native_stderr

    total = frame_count(path, fps) if count is None else min(count, frame_count(path, fps))
    out = np.full((total, N_LANDMARKS, 3), np.nan, np.float32)
    size = (0, 0)
    with quiet_native_stderr(), FaceMeshTracker(video=True) as tracker, progress(label, total=total) as bar:
        for i, frame in zip(range(total), iter_frames(path, fps)):
            size = frame.shape[:2]
            lms = tracker(frame)
            if lms is not None:
                out[i] = lms
            bar.advance()
        faces = tracker.max_faces_seen
    return out, size, faces
