"""Band-pass Gaussian random fields: the raw material of the perforated-sheet model.

A field is synthesised in Fourier space: independent complex Gaussian coefficients times
an amplitude concentrated on a shell |k| = 1/lambda, inverse FFT, normalised to zero mean
and unit SD. The field is periodic over the FFT box (harmless: structure at one face
matches the opposite face). Work is float32/complex64 and the inverse FFT runs axis by
axis so a whole-vertebra field (~4e8 voxels) needs about three field-sized buffers.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import scipy.fft

from ..errors import InvalidParameterError

_FFT_WORKERS = 2


def shell_amplitude(k_norm_per_mm: np.ndarray, *, wavelength_mm: float, shell_relative_width: float) -> np.ndarray:
    """Spectral amplitude of the shell: a Gaussian in |k| centred on 1/lambda (cycles/mm)."""
    k0 = 1.0 / wavelength_mm
    sigma = shell_relative_width * k0
    return np.exp(-0.5 * ((k_norm_per_mm - k0) / sigma) ** 2)


def bandpass_field(
    shape_zyx: Sequence[int],
    voxel_mm: float,
    rng: np.random.Generator,
    *,
    wavelength_mm: float,
    z_elongation: float = 1.0,
    shell_relative_width: float = 0.15,
) -> np.ndarray:
    """A normalised band-pass Gaussian random field on an isotropic grid.

    Parameters
    ----------
    shape_zyx : 3 ints
        Output shape (z, y, x).
    voxel_mm : float
        Isotropic grid spacing (mm).
    rng : numpy.random.Generator
        Source of randomness (the only one used).
    wavelength_mm : float
        lambda: the spectrum is a shell at |k| = 1/lambda cycles/mm.
    z_elongation : float
        a <= 1 compresses the spectrum along k_z (|k| uses k_z / a), stretching the
        structure along z by 1/a (vertical plates); 1 is isotropic.
    shell_relative_width : float
        Gaussian SD of the shell relative to its radius.

    Returns
    -------
    ndarray float32, shape ``shape_zyx``: mean 0, SD 1 over the array.
    """
    shape = tuple(int(n) for n in shape_zyx)
    if len(shape) != 3 or min(shape) < 2:
        raise InvalidParameterError(f"field shape must be 3 sizes >= 2, got {shape}")
    if not (wavelength_mm > 2 * voxel_mm):
        raise InvalidParameterError(f"wavelength {wavelength_mm} mm must exceed two voxels ({voxel_mm} mm each)")
    if not (0 < z_elongation <= 1.5) or not (0 < shell_relative_width < 1):
        raise InvalidParameterError("z_elongation must be in (0, 1.5] and shell_relative_width in (0, 1)")
    fft_shape = tuple(scipy.fft.next_fast_len(n, real=True) for n in shape)
    nz, ny, nx = fft_shape
    kz = scipy.fft.fftfreq(nz, d=voxel_mm) / z_elongation
    ky = scipy.fft.fftfreq(ny, d=voxel_mm)
    kx = scipy.fft.rfftfreq(nx, d=voxel_mm)
    kyx2 = ky[:, None] ** 2 + kx[None, :] ** 2
    spectrum = np.empty((nz, ny, kx.size), dtype=np.complex64)
    for iz in range(nz):  # per plane keeps temporaries small
        amplitude = shell_amplitude(
            np.sqrt(kyx2 + kz[iz] ** 2), wavelength_mm=wavelength_mm, shell_relative_width=shell_relative_width
        ).astype(np.float32)
        plane = rng.standard_normal((ny, kx.size), dtype=np.float32) * amplitude
        spectrum[iz].real = plane
        spectrum[iz].imag = rng.standard_normal((ny, kx.size), dtype=np.float32) * amplitude
    spectrum[0, 0, 0] = 0  # no DC: mean ~ 0 before normalising
    # inverse FFT axis by axis, in place for the complex axes, then chunked c2r along x
    spectrum = scipy.fft.ifft(spectrum, axis=0, overwrite_x=True, workers=_FFT_WORKERS, norm="forward")
    spectrum = scipy.fft.ifft(spectrum, axis=1, overwrite_x=True, workers=_FFT_WORKERS, norm="forward")
    field = np.empty(shape, dtype=np.float32)
    step = max(1, int(2**24 // (ny * kx.size)))
    for z0 in range(0, shape[0], step):
        z1 = min(shape[0], z0 + step)
        block = scipy.fft.irfft(spectrum[z0:z1], n=nx, axis=2, workers=_FFT_WORKERS, norm="forward")
        field[z0:z1] = block[:, : shape[1], : shape[2]]
    del spectrum
    _normalise_in_place(field)
    return field


def _normalise_in_place(field: np.ndarray) -> None:
    """Zero mean, unit SD; statistics accumulated in float64 slab by slab."""
    total = 0.0
    total_sq = 0.0
    for z in range(field.shape[0]):
        slab = field[z].astype(np.float64)
        total += slab.sum()
        total_sq += np.square(slab).sum()
    n = field.size
    mean = total / n
    sd = np.sqrt(max(total_sq / n - mean**2, 1e-30))
    for z in range(field.shape[0]):
        field[z] -= np.float32(mean)
        field[z] *= np.float32(1.0 / sd)


def quantile_threshold(values_by_chunk, count_below: int) -> float:
    """A threshold t with exactly ``count_below`` values < t (ties aside).

    ``values_by_chunk`` is a callable returning a fresh iterable of 1-D float arrays (it is
    iterated twice: a coarse histogram, then the values of the one bin that holds the
    order statistic), so the data never need to be in memory at once.
    """
    if count_below <= 0:
        return float("-inf")
    lo, hi = np.inf, -np.inf
    n = 0
    for values in values_by_chunk():
        if values.size:
            lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
            n += values.size
    if count_below >= n:
        return float(np.nextafter(np.float32(hi), np.float32(np.inf)))
    edges = np.linspace(lo, hi, 65537)
    counts = np.zeros(edges.size - 1, dtype=np.int64)
    for values in values_by_chunk():
        counts += np.histogram(values, bins=edges)[0]
    cumulative = np.cumsum(counts)
    b = int(np.searchsorted(cumulative, count_below, side="left"))  # bin holding the k-th value
    before = int(cumulative[b - 1]) if b > 0 else 0
    in_bin = []
    for values in values_by_chunk():
        sel = values[(values >= edges[b]) & ((values < edges[b + 1]) if b + 1 < edges.size - 1 else (values <= edges[b + 1]))]
        in_bin.append(sel)
    in_bin_sorted = np.sort(np.concatenate(in_bin))
    r = count_below - before  # need r values of this bin below t (1 <= r <= len)
    below = float(in_bin_sorted[r - 1])
    above = float(in_bin_sorted[r]) if r < in_bin_sorted.size else float(edges[b + 1])
    return 0.5 * (below + above) if above > below else float(np.nextafter(np.float32(below), np.float32(np.inf)))


def field_shape_for(extent_mm: Tuple[float, float, float], voxel_mm: float) -> Tuple[int, int, int]:
    """Grid shape (z, y, x) covering ``extent_mm`` = (z, y, x) lengths at ``voxel_mm``."""
    return tuple(max(2, int(round(e / voxel_mm))) for e in extent_mm)  # type: ignore[return-value]
