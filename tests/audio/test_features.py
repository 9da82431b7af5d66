"""features_for end to end: shapes, windows, cache, spec checks, TTS, real files."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from nerfhead.audio import FeatureSpec, features_for, get_extractor
from nerfhead.audio.extractors import FeatureMismatchError
from nerfhead.audio.features import load_features, write_features
from nerfhead.audio.loading import HOP, iter_blocks
from nerfhead.audio.melspec import log_mel
from nerfhead.errors import InputError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make install)")


def test_sample_capture_features(sample_capture):
    f = features_for(sample_capture)
    assert f.features.shape == (int(np.ceil(f.duration * 100)), 91)
    assert f.features.dtype == np.float32 and np.all(np.isfinite(f.features))
    assert f.n_video_frames == 500 and f.windows.shape == (500, 16, 91)
    assert f.phone_source == "allphone"
    assert 0.3 < float(np.mean(f.vad > 0.5)) < 1.0
    assert len(set(f.viseme_ids.tolist())) >= 8
    # window i is centred on feature frame 4 i, edge-padded at both ends
    assert np.array_equal(f.windows[10, 8], f.features[40])
    assert np.array_equal(f.windows[0, 0], f.features[0])
    assert np.array_equal(f.windows_for(600)[-1, -1], f.features[-1])
    # cached: the same content is instant, even under another name
    t = time.perf_counter()
    again = features_for(sample_capture)
    assert time.perf_counter() - t < 0.5
    assert np.array_equal(again.features, f.features)
    assert abs(len(again.samples) / 16000 - f.duration) < 1e-3


def test_blocks_join_without_seams(speech):
    """Block-wise features (flat memory) equal features of the whole array."""
    blocks = list(iter_blocks([speech[i:i + 7777] for i in range(0, speech.size, 7777)], min_seconds=3, max_seconds=6))
    assert len(blocks) >= 3
    assert blocks[0].start == 0 and all(b.start % HOP == 0 for b in blocks)
    assert sum(b.core for b in blocks) == speech.size
    assert sum(b.n_frames for b in blocks) == -(-speech.size // HOP)
    ext = get_extractor("mel80")
    joined = np.concatenate([o["features"] for o in ext.extract_blocks(blocks)])
    assert np.allclose(joined, log_mel(speech), atol=1e-5)


def test_spec_mismatch_is_a_clear_error(sample_capture):
    spec = get_extractor("default").spec()
    spec.require(spec.to_dict())
    with pytest.raises(FeatureMismatchError, match="trained with mel80 v1"):
        spec.require(get_extractor("mel80").spec())
    with pytest.raises(FeatureMismatchError):
        spec.require(FeatureSpec(name="default", dim=91, version=2))
    with pytest.raises(InputError, match="unknown feature extractor 'hubert'"):
        get_extractor("hubert")


def test_write_features_npz_and_plot(sample_capture, tmp_path):
    feats, out = write_features(sample_capture, out=tmp_path / "f.npz", plot=tmp_path / "f.png")
    arr, spec, meta = load_features(out)
    assert arr.shape == feats.features.shape and spec == feats.spec
    assert meta["n_video_frames"] == 500
    assert (tmp_path / "f.png").stat().st_size > 10_000


@needs_espeak
def test_tts_script_is_aligned_and_cached(tmp_path):
    script = tmp_path / "script.txt"
    script.write_text("Hello there. This is a short script!\n\nIt has three sentences.")
    f = features_for(text_file=script, rate=170)
    assert f.phone_source == "aligned"
    assert f.text.startswith("Hello there.")
    spoken = [p for p, _, _ in f.phones if p != "SIL"]
    assert spoken[:4] == ["HH", "AH", "L", "OW"]
    t = time.perf_counter()
    assert np.array_equal(features_for(text_file=script, rate=170).features, f.features)
    assert time.perf_counter() - t < 0.5
    slower = features_for(text="Hello there.", rate=100)
    faster = features_for(text="Hello there.", rate=300)
    assert slower.duration > 1.8 * faster.duration
    german = features_for(text="Guten Morgen.", voice="de")
    assert german.phone_source == "aligned"


@needs_espeak
def test_transcript_of_an_audio_file_is_aligned(tmp_path):
    from nerfhead.audio.tts import synthesize

    speech = synthesize(text="Maple bread for breakfast.", out=tmp_path / "s.wav", cache=False)
    f = features_for(speech.path, text="maple bread for breakfast")
    assert f.phone_source == "aligned"
    assert [p for p, _, _ in f.phones if p != "SIL"][:4] == ["M", "EY", "P", "AH"]


def test_every_shared_audio_file(shared_data):
    """Every file of ../shared/data/audio: 8-48 kHz, 16/24-bit, mono/stereo, many languages."""
    for path in sorted((shared_data / "audio").iterdir()):
        f = features_for(path)
        n = int(np.ceil(f.duration * 100))
        assert f.features.shape == (n, 91), path.name
        assert np.all(np.isfinite(f.features)), path.name
        assert float(np.mean(f.vad > 0.5)) > 0.3, path.name
        assert float(np.mean(f.viseme_ids > 0)) > 0.3, path.name
        print(f"{path.name}: {f.duration:.1f} s, gain {f.gain_db:+.1f} dB, speech {np.mean(f.vad > .5):.0%}")


def test_audio_track_of_every_shared_video(shared_data):
    videos = sorted((shared_data / "identities").glob("*.mp4")) + sorted((shared_data / "clips").glob("*.mp4"))
    assert len(videos) >= 6
    for path in videos:
        f = features_for(path)
        assert f.features.shape == (int(np.ceil(f.duration * 100)), 91), path.name
        assert np.all(np.isfinite(f.features)), path.name
        assert f.windows.shape[0] == f.n_video_frames
        print(f"{path.name}: {f.duration:.1f} s, speech {np.mean(f.vad > .5):.0%}, {f.phone_source}")


def test_cache_env_and_damaged_entry(sample_capture):
    from nerfhead.audio import cache

    assert cache.features_dir().parent == cache.cache_root() and os.environ["NERFHEAD_CACHE"] in str(cache.cache_root())
    f = features_for(sample_capture)
    npz, _ = cache.entry_paths(f.cache_key)
    npz.write_bytes(b"not an npz")
    again = features_for(sample_capture)  # recomputed, not crashed
    assert np.allclose(again.features, f.features)


def _padded_windows(feats: np.ndarray, n: int, step: float, size: int = 16) -> np.ndarray:
    """The windows as a plain copy (edge padding by np.pad): the reference for FrameWindows."""
    half = size // 2
    padded = np.pad(feats, ((half, int(n * step) + size), (0, 0)), mode="edge")
    centres = np.round(np.arange(n) * step).astype(int)
    return np.stack([padded[c:c + size] for c in centres])


def test_windows_read_from_the_feature_file(sample_capture):
    """The windows the render reads (rows fetched from the cache's feature file as each chunk
    is asked for) equal plain edge-padded windows of the whole array, at 25 and 30 fps, past
    the end of the audio, by slice, by index list and by element; the loudness read a minute at a
    time equals the loudness of all the samples."""
    from nerfhead.audio import cache
    from nerfhead.audio.timeline import loudness_db

    f = features_for(sample_capture)
    assert f.feature_file is not None and f.feature_file.path == cache.features_path(f.cache_key)
    assert f.feature_file.shape == f.features.shape
    whole = np.array(f.features)
    for fps, n in ((25.0, f.n_video_frames + 7), (30.0, round(f.duration * 30))):
        ref = _padded_windows(whole, n, 100.0 / fps)
        w = f.windows_for(n, fps=fps)
        assert w.shape == ref.shape and len(w) == n
        assert np.array_equal(np.asarray(w), ref)
        assert np.array_equal(w[40:65], ref[40:65]) and np.array_equal(w[n - 3:], ref[n - 3:])
        picks = np.array([3, 0, n - 1, 250])
        assert np.array_equal(w[picks], ref[picks]) and np.array_equal(w[7, 8], ref[7, 8])
        assert np.array_equal(w[:, 8], ref[:, 8])
    in_memory = features_for(sample_capture)
    in_memory.feature_file = None  # windows of the array itself: the same
    assert np.array_equal(np.asarray(in_memory.windows), np.asarray(f.windows))
    n = f.n_video_frames
    assert np.allclose(f.loudness(n, chunk_frames=37), loudness_db(f.samples, n), atol=1e-3)
