"""MTCNN's three-stage cascade, rewritten around facenet-pytorch's pretrained nets.

facenet-pytorch's `detect_face` spends most of its time outside its networks:
an `interpolate(mode="area")` per pyramid level, a Python loop that crops and
area-resizes candidate boxes one at a time for R-Net and O-Net, nets run in a
memory layout PyTorch's CPU kernels handle slowly, and, on a small CPU, tens
of microseconds of dispatch for each of hundreds of tensor operations. This
module keeps its P-, R- and O-Net weights, scales, thresholds, NMS steps and
box arithmetic, and replaces the glue:

- one summed-area table per image gives every area resize, the pyramid's
  and all candidates' crops alike, in a few gathers: exactly the pixels
  facenet-pytorch feeds its nets, since the sums are integers;
- each stage crops all its candidates in one call; the pyramid's geometry
  is planned once per image size, and its small levels share one P-Net pass;
- the nets run channels-last (two to three times faster here), P-Net with
  its two heads fused and a faster first pool;
- P-Net skips windows lying wholly in a plain frame, such as the grey edge
  padding `MtcnnDetector` adds, when a plain window scores below threshold:
  such windows all score alike, so the result does not change;
- candidate boxes, a few hundred numbers, are kept in NumPy on the host;
- memory stays a small multiple of the image's: the grey frame is added to
  the summed-area table only, large pyramid levels are scanned in bands of
  window rows, and P-Net's windows are picked scan by scan.

Boxes, landmarks and probabilities match facenet-pytorch's to float rounding
(1e-4 px on the shared test photos). Cheaper resamplers were tried first and
rejected: an antialiased bilinear pyramid, or `torchvision.ops.roi_align`
crops, each moved R- and O-Net scores enough to lose or gain faces near a
threshold (one of the seven faces of the group selfie is lost) and moved
some boxes by 15 px or more.

Boxes follow facenet-pytorch's conventions: (x1, y1, x2, y2) floats whose
integer parts name 1-based, inclusive pixels when cropping (its `pad` step),
and whose regression steps count widths as `x2 − x1 + 1`.
"""

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from facenet_pytorch.models.mtcnn import ONet, PNet, RNet
from numpy.typing import NDArray
from PIL import Image, ImageChops
from torch import nn
from torch.nn.functional import max_pool2d
from torchvision.ops import batched_nms, nms

# P-Net scores 12×12 windows with a stride of 2 pixels at each pyramid level.
PNET_WINDOW = 12
_PNET_STRIDE = 2
# The colour `MtcnnCascade.detect` frames an image in: neutral, and plain, so P-Net skips it.
FRAME_GREY = (128, 128, 128)
# Pixels enter every net as (value − 127.5) / 128, as in the original MTCNN.
_PIXEL_SCALE = 0.0078125
_PIXEL_SHIFT = -127.5 * _PIXEL_SCALE
# Overlap limits of facenet-pytorch's `detect_face`, stage by stage.
_NMS_WITHIN_SCALE = 0.5
_NMS_ACROSS_SCALES = 0.7
_NMS_REFINED = 0.7
_NMS_FINAL_MIN = 0.7
_RNET_INPUT = 24
_ONET_INPUT = 48
# Pyramid levels this small (in pixels scanned) share one P-Net pass: each
# pass costs a third of a millisecond of overhead on the 2-core CPU this was
# tuned on, more than P-Net's work on such a level.
_PACKED_LEVEL_PIXELS = 80 * 80
# Larger levels are scanned in bands of about this many pixels, so that P-Net's
# activations and the band's rows of the summed-area table take a few megabytes
# however large the image (about 80 MB in one pass over a 1920-pixel photo's
# largest level).
_BAND_PIXELS = 256 * 256


# Candidate boxes live on the host: a few hundred numbers per stage, for which
# each PyTorch operation would cost tens of microseconds (a kernel launch on a
# GPU), against a few for NumPy's. Rows are (x1, y1, x2, y2, score, ...).
Boxes = NDArray[np.float32]
Index = NDArray[np.int64]


@dataclass(frozen=True)
class MtcnnFaces:
    """The faces found in one image, most confident first.

    `boxes` is (N, 4) as (x1, y1, x2, y2), `probabilities` is (N,), and
    `landmarks` is (N, 5, 2) as (x, y): left eye, right eye, nose, left and
    right mouth corners; all in the image's pixels.
    """

    boxes: NDArray[np.float32]
    probabilities: NDArray[np.float32]
    landmarks: NDArray[np.float32]

    @classmethod
    def empty(cls) -> "MtcnnFaces":
        """No faces."""
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            probabilities=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32),
        )

    def __len__(self) -> int:
        return len(self.probabilities)


class Span(NamedTuple):
    """A rectangle of image pixels: rows `[top, bottom)`, columns `[left, right)`."""

    top: int
    bottom: int
    left: int
    right: int


@dataclass(frozen=True, eq=False)
class PyramidScan:
    """One P-Net pass: a large pyramid level alone, or the small ones side by side.

    Each pixel is a normalised area-bin mean, `weight` times a bin sum read
    off the summed-area table at four corners: separably for a level alone
    (`rows` and `cols`, each row's then each column's past-the-end and
    first image pixel), or per pixel for packed levels (`corners`, flat
    table indices). Packed levels also carry `mask`, added to P-Net's first
    layer (0 where it sees a single level, −inf elsewhere, so that pooling
    at a level's edge ignores its neighbour), and `cells`, which of P-Net's
    outputs are whole windows of a level.
    """

    weight: torch.Tensor
    rows: torch.Tensor | None = None
    cols: torch.Tensor | None = None
    corners: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    cells: torch.Tensor | None = None


@dataclass(frozen=True, eq=False)
class PyramidPlan:
    """How P-Net scans one image geometry's pyramid, and where its windows lie.

    P-Net's window outputs for all levels are concatenated, level after
    level, row by row. Level i's start at `starts[i]`; `scales[i]` is its
    scale and `grids[i]` its first window's column and row (in the whole
    level) and its windows per row.
    """

    scans: tuple[PyramidScan, ...]
    starts: NDArray[np.int64]
    scales: NDArray[np.float32]
    grids: NDArray[np.int64]


class _Level(NamedTuple):
    """The part of one pyramid level that P-Net scans, planned with NumPy."""

    scale: float
    rows: NDArray[np.int64]  # (2, h): past-the-end and first image row of each row's bin
    cols: NDArray[np.int64]  # (2, w): likewise for columns
    grid: tuple[int, int, int]  # first window's column and row; windows per row
    windows: int

    @property
    def pixels(self) -> int:
        """How many pixels of the level P-Net scans."""
        return int(self.rows.shape[1] * self.cols.shape[1])

    @property
    def weight(self) -> NDArray[np.float32]:
        """(h, w): what turns each pixel's bin sum into a normalised mean."""
        counts = np.outer(self.rows[0] - self.rows[1], self.cols[0] - self.cols[1])
        return (_PIXEL_SCALE / counts).astype(np.float32)


class MaxPool2(nn.Module):
    """P-Net's 2×2, stride-2 max pool, on even sizes as maxima of strided views.

    PyTorch's channels-last max pool is slow for P-Net's ten channels. On
    even sizes ceil mode pools no partial cells, and the maxima are the same.
    """

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[-2] % 2 or features.shape[-1] % 2:
            return max_pool2d(features, 2, 2, ceil_mode=True)
        rows = torch.maximum(features[..., ::2, :], features[..., 1::2, :])
        return torch.maximum(rows[..., ::2], rows[..., 1::2])


class PNetHeads(nn.Module):
    """facenet-pytorch's P-Net, its two 1×1 heads fused into one and without softmax.

    Returns (h·w, 6), one row per window, row by row: two face/non-face
    logits, then four box offsets. P-Net runs once per pyramid scan, so each
    operation saved counts; on channels-last features the fused head is a
    single small matrix product that yields the rows directly.
    """

    def __init__(self, pnet: PNet) -> None:
        super().__init__()
        self.stem = nn.Sequential(pnet.conv1, pnet.prelu1)
        self.body = nn.Sequential(MaxPool2(), pnet.conv2, pnet.prelu2, pnet.conv3, pnet.prelu3)
        face, offsets = pnet.conv4_1, pnet.conv4_2
        self.heads = nn.Linear(32, 6)
        self.heads.weight = nn.Parameter(
            torch.cat((face.weight, offsets.weight)).flatten(1).detach()
        )
        self.heads.bias = nn.Parameter(torch.cat((face.bias, offsets.bias)).detach())

    def forward(self, pixels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        features = self.stem(pixels)
        if mask is not None:
            features = features + mask
        heads: torch.Tensor = self.heads(self.body(features).permute(0, 2, 3, 1))
        return heads.reshape(-1, 6)


class MtcnnCascade:
    """P-Net proposals over an image pyramid, refined by R-Net, finished by O-Net.

    Holds the three pretrained nets on `device`, where a detection's images,
    crops and network work stay; only candidate boxes and scores come back
    to the host between stages. Same defaults as facenet-pytorch's `MTCNN`.
    Safe to share between threads: detection changes no state but caches.
    """

    def __init__(
        self,
        *,
        device: torch.device,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
    ) -> None:
        self.device = device
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.factor = factor
        self.pnet = _prepared(PNetHeads(PNet(pretrained=True)), device)
        self.rnet = _prepared(RNet(pretrained=True), device)
        self.onet = _prepared(ONet(pretrained=True), device)
        self._shift = torch.tensor(_PIXEL_SHIFT, device=device)
        self._plain_passes = functools.lru_cache(maxsize=64)(self._plain_window_passes)

    def detect(self, image: Image.Image, *, frame: int = 0) -> MtcnnFaces:
        """Every face in `image` (converted to RGB if need be), framed first in `frame`
        pixels of `FRAME_GREY` on every side; boxes and landmarks in the framed pixels.

        The frame is added to the summed-area table alone, so a framed copy of
        the image is never made.
        """
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        height, width = rgb.height + 2 * frame, rgb.width + 2 * frame
        if not pyramid_scales(height, width, min_face_size=self.min_face_size, factor=self.factor):
            return MtcnnFaces.empty()  # too small to hold a face of `min_face_size`
        with torch.inference_mode():
            content = self._content(rgb, frame=frame)
            if content is None:
                return MtcnnFaces.empty()
            pixels = torch.from_numpy(np.array(rgb)).to(self.device)
            table = integral_image(pixels, frame=frame)
            del pixels  # the table holds all detection needs of them
            boxes = self._propose(table, content=content)
            if len(boxes):
                boxes = self._refine(table, boxes)
            if len(boxes):
                return self._finish(table, boxes)
        return MtcnnFaces.empty()

    def _content(self, rgb: Image.Image, *, frame: int) -> Span | None:
        """Where P-Net must look in `rgb` framed by `frame` pixels: inside any plain frame
        (the grey one, or one of `rgb`'s own corner colour), unless that passes for a face.

        None when the framed image is plain throughout and so cannot hold a face.
        """
        corner = np.asarray(rgb.crop((0, 0, 1, 1))).reshape(-1).tolist()
        colour: tuple[int, ...] = FRAME_GREY if frame else tuple(corner)
        whole = Span(0, rgb.height + 2 * frame, 0, rgb.width + 2 * frame)
        inner = framed_content(rgb, colour=colour)
        if inner is None:
            return None
        content = Span(*(side + frame for side in inner))
        if content == whole or not self._plain_passes(colour):
            return content
        return whole

    def _plain_window_passes(self, colour: tuple[int, ...]) -> bool:
        """Whether P-Net scores a window of plain `colour` as a possible face."""
        pixel = torch.tensor(colour, dtype=torch.float32, device=self.device) * _PIXEL_SCALE
        window = (pixel + _PIXEL_SHIFT).view(1, 3, 1, 1).expand(1, 3, PNET_WINDOW, PNET_WINDOW)
        heads = self.pnet(window.contiguous(memory_format=torch.channels_last))
        return float(heads[0, :2].softmax(dim=0)[1]) >= self.thresholds[0]

    def _propose(self, table: torch.Tensor, *, content: Span) -> Boxes:
        """Stage 1: P-Net windows at every scale, merged, regressed and squared."""
        plan = pyramid_plan(
            table.shape[0] - 1,
            table.shape[1] - 1,
            content,
            min_face_size=self.min_face_size,
            factor=self.factor,
            device=table.device,
        )
        if not plan.scans:
            return np.zeros((0, 5), np.float32)
        # Windows are picked scan by scan: all P-Net's outputs at once would take tens
        # of megabytes for a large image, of which a few hundred windows are kept.
        picked, found, start = [], [], 0
        for scan in plan.scans:
            heads = self._scan(table, scan)
            probabilities = heads[:, :2].softmax(dim=1)[:, 1]
            chosen = torch.nonzero(probabilities >= self.thresholds[0]).flatten()
            found.append(torch.cat((probabilities[chosen, None], heads[chosen, 2:]), dim=1))
            picked.append(chosen + start)
            start += len(heads)
        windows, levels = pnet_windows(
            torch.cat(picked).cpu().numpy(), torch.cat(found).cpu().numpy(), plan
        )
        # One batched call does facenet-pytorch's NMS within each scale.
        windows = windows[box_nms(windows, _NMS_WITHIN_SCALE, groups=levels)]
        windows = windows[box_nms(windows, _NMS_ACROSS_SCALES)]
        return square(shift_pnet_windows(windows))

    def _scan(self, table: torch.Tensor, scan: PyramidScan) -> torch.Tensor:
        """P-Net's outputs for every window of `scan`'s levels: (M, 6)."""
        heads: torch.Tensor = self.pnet(scan_pixels(table, scan, shift=self._shift), scan.mask)
        return heads if scan.cells is None else heads.index_select(0, scan.cells)

    def _refine(self, table: torch.Tensor, boxes: Boxes) -> Boxes:
        """Stage 2: R-Net rescores and regresses the stage-1 boxes."""
        crops, boxes = crop_boxes(table, boxes, size=_RNET_INPUT, shift=self._shift)
        if not len(boxes):
            return boxes
        offsets, probabilities = (output.cpu().numpy() for output in self.rnet(crops))
        scores = probabilities[:, 1]
        passed = scores > self.thresholds[1]
        boxes = np.concatenate((boxes[passed, :4], scores[passed, None]), axis=1)
        keep = box_nms(boxes, _NMS_REFINED)
        return square(regress(boxes[keep], offsets[passed][keep]))

    def _finish(self, table: torch.Tensor, boxes: Boxes) -> MtcnnFaces:
        """Stage 3: O-Net scores, landmarks and final boxes, merged by 'Min' NMS."""
        crops, boxes = crop_boxes(table, boxes, size=_ONET_INPUT, shift=self._shift)
        if not len(boxes):
            return MtcnnFaces.empty()
        offsets, points, probabilities = (output.cpu().numpy() for output in self.onet(crops))
        scores = probabilities[:, 1]
        passed = scores > self.thresholds[2]
        boxes = np.concatenate((boxes[passed, :4], scores[passed, None]), axis=1)
        landmarks = place_landmarks(boxes, points[passed])
        boxes = regress(boxes, offsets[passed])
        keep = nms_min(boxes, _NMS_FINAL_MIN)
        return MtcnnFaces(
            boxes=boxes[keep, :4], probabilities=boxes[keep, 4], landmarks=landmarks[keep]
        )


def _prepared(net: nn.Module, device: torch.device) -> nn.Module:
    """`net` on `device`, channels-last, in inference mode."""
    return net.to(device).to(memory_format=torch.channels_last).eval()


def integral_image(pixels: torch.Tensor, *, frame: int = 0) -> torch.Tensor:
    """The summed-area table of (H, W, 3) uint8 `pixels` framed in `frame` pixels of
    `FRAME_GREY`: (H + 2·frame + 1, W + 2·frame + 1, 3) integers.

    Every resize of the cascade is an area resize, each of whose pixels is a
    mean over a rectangle of whole pixels; with this table each such sum
    costs four look-ups, whatever the rectangle's size. Integer sums are
    exact; int32 holds them for images up to 8 megapixels.
    """
    height, width = pixels.shape[0] + 2 * frame, pixels.shape[1] + 2 * frame
    dtype = torch.int32 if 255 * height * width < 2**31 else torch.int64
    # Built in one buffer: widening, framing and padding one after another would
    # hold two or three tables at once.
    table = pixels.new_zeros((height + 1, width + 1, pixels.shape[2]), dtype=dtype)
    if frame:
        table[1:, 1:] = torch.tensor(FRAME_GREY, dtype=dtype, device=pixels.device)
    table[1 + frame : height + 1 - frame, 1 + frame : width + 1 - frame] = pixels
    return table.cumsum_(0).cumsum_(1)


def framed_content(rgb: Image.Image, *, colour: tuple[int, ...]) -> Span | None:
    """The smallest rectangle outside which `rgb` is all `colour`; None if it is all `colour`."""
    plain = Image.new("RGB", rgb.size, colour)
    box = ImageChops.difference(rgb, plain).getbbox()
    return None if box is None else Span(top=box[1], bottom=box[3], left=box[0], right=box[2])


def pyramid_scales(height: int, width: int, *, min_face_size: int, factor: float) -> list[float]:
    """Scales at which faces from `min_face_size` up fill P-Net's 12 px window."""
    scale = PNET_WINDOW / min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= PNET_WINDOW:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


@functools.lru_cache(maxsize=16)
def pyramid_plan(
    height: int,
    width: int,
    content: Span,
    *,
    min_face_size: int,
    factor: float,
    device: torch.device,
) -> PyramidPlan:
    """How P-Net scans the pyramid of a `height` × `width` image to cover `content`.

    Small levels cost P-Net little but its per-call overhead, so they share
    one pass. Planned with NumPy, whose small-array operations cost far less
    than PyTorch's, and cached, since a service sees the same sizes again
    and again.
    """
    scales = pyramid_scales(height, width, min_face_size=min_face_size, factor=factor)
    levels = [level for scale in scales if (level := _plan_level(height, width, scale, content))]
    small = [level for level in levels if level.pixels <= _PACKED_LEVEL_PIXELS]
    scans = [
        scan for level in levels[: len(levels) - len(small)] for scan in _level_scans(level, device)
    ]
    if small:
        scans.append(_packed_scan(small, width, device))
    return PyramidPlan(
        scans=tuple(scans),
        starts=np.cumsum([0] + [level.windows for level in levels])[:-1],
        scales=np.array([level.scale for level in levels], np.float32),
        grids=np.array([level.grid for level in levels], np.int64).reshape(-1, 3),
    )


def _plan_level(height: int, width: int, scale: float, content: Span) -> _Level | None:
    """The part of the level at `scale` whose windows reach `content`; None if none do."""
    size = (int(height * scale + 1), int(width * scale + 1))
    rows = level_span(height, size[0], content.top, content.bottom)
    cols = level_span(width, size[1], content.left, content.right)
    if rows is None or cols is None:
        return None
    window_rows, window_cols = (pnet_windows_along(stop - start) for start, stop in (rows, cols))
    return _Level(
        scale=scale,
        rows=area_bins(height, size[0], rows),
        cols=area_bins(width, size[1], cols),
        grid=(cols[0] // _PNET_STRIDE, rows[0] // _PNET_STRIDE, window_cols),
        windows=window_rows * window_cols,
    )


def _level_scan(level: _Level, device: torch.device) -> PyramidScan:
    """A pass over one level alone, its bins kept separable (small even for huge images)."""
    return PyramidScan(
        weight=torch.from_numpy(level.weight[..., None]).to(device),
        rows=torch.from_numpy(level.rows.ravel()).to(device),
        cols=torch.from_numpy(level.cols.ravel()).to(device),
    )


def _level_scans(level: _Level, device: torch.device) -> list[PyramidScan]:
    """Passes over one level alone, band after band (see `level_bands`)."""
    height, width = level.rows.shape[1], level.cols.shape[1]
    return [
        _level_scan(level._replace(rows=level.rows[:, band]), device)
        for band in level_bands(height, width)
    ]


def level_bands(height: int, width: int, *, pixels: int = _BAND_PIXELS) -> list[slice]:
    """Rows of a `height` × `width` level to scan in turn, each about `pixels` pixels.

    Window row j reads rows [2j, 2j + 12), so each band starts on an even row
    and overlaps the next by 10, and P-Net's outputs for the bands, one after
    another, are its outputs for the whole level, row by row. The last band
    reaches the level's bottom edge, where P-Net's ceil-mode pool then acts
    as on the whole level.
    """
    window_rows = pnet_windows_along(height)
    per_band = max(1, (pixels // width - PNET_WINDOW) // _PNET_STRIDE + 1)
    bands = []
    for first in range(0, window_rows, per_band):
        end = first + per_band
        bottom = height if end >= window_rows else (end - 1) * _PNET_STRIDE + PNET_WINDOW
        bands.append(slice(first * _PNET_STRIDE, bottom))
    return bands or [slice(0, height)]


def _packed_scan(levels: list[_Level], width: int, device: torch.device) -> PyramidScan:
    """One pass over small `levels` side by side, top-aligned, each starting on an even column.

    Its sides are even, so that P-Net's first pool is `MaxPool2`'s fast one.
    """
    widths = [level.cols.shape[1] for level in levels]
    starts = np.cumsum([0] + [_even(columns) for columns in widths[:-1]]).tolist()
    shape = (_even(max(level.rows.shape[1] for level in levels)), _even(starts[-1] + widths[-1]))
    corners = np.zeros((4, *shape), np.int64)
    weight = np.zeros(shape, np.float32)
    mask = np.full((shape[0] - 2, shape[1] - 2), -np.inf, np.float32)
    for level, start in zip(levels, starts, strict=True):
        _place(level, start=start, image_width=width, corners=corners, weight=weight, mask=mask)
    windows_per_row = pnet_windows_along(shape[1])
    cells = [
        _cells(level, start, windows_per_row) for level, start in zip(levels, starts, strict=True)
    ]
    return PyramidScan(
        weight=torch.from_numpy(weight[..., None]).to(device),
        corners=torch.from_numpy(corners.reshape(-1)).to(device),
        mask=torch.from_numpy(mask[None, None]).to(device),
        cells=torch.from_numpy(np.concatenate(cells)).to(device),
    )


def _even(pixels: int) -> int:
    """`pixels`, rounded up to an even number."""
    return pixels + pixels % 2


def _place(
    level: _Level,
    *,
    start: int,
    image_width: int,
    corners: NDArray[np.int64],
    weight: NDArray[np.float32],
    mask: NDArray[np.float32],
) -> None:
    """Write `level` into a packed scan's arrays, its left edge at column `start`."""
    height, width = level.rows.shape[1], level.cols.shape[1]
    columns = slice(start, start + width)
    # Flat table indices of each bin's four corners, in `scan_pixels`' order.
    rows = level.rows[[0, 1, 0, 1], :, None] * (image_width + 1)
    corners[:, :height, columns] = rows + level.cols[[0, 0, 1, 1], None, :]
    weight[:height, columns] = level.weight
    mask[: height - 2, start : start + width - 2] = 0


def _cells(level: _Level, start: int, windows_per_row: int) -> NDArray[np.int64]:
    """Where `level`'s windows are among a packed pass's outputs, row by row."""
    rows = np.arange(level.windows // level.grid[2])[:, None] * windows_per_row
    return (rows + start // _PNET_STRIDE + np.arange(level.grid[2])).ravel()


def pnet_windows_along(pixels: int) -> int:
    """How many windows P-Net scores along an axis of `pixels` (its output's size)."""
    return (pixels - 1) // _PNET_STRIDE - 4


def level_span(length: int, size: int, first: int, end: int) -> tuple[int, int] | None:
    """Which pixels of a pyramid level P-Net must see to cover image pixels `[first, end)`.

    The level has `size` pixels along an axis of `length` image pixels.
    Returns `(start, stop)` level pixels, `start` even so that P-Net's stride
    lines up with a full scan's, or `None` when no window touches them. A
    level pixel touches `[first, end)` when its area bin does (see `area_bins`).
    """
    touching_first = first * size // length
    touching_last = min(-(-end * size // length), size) - 1
    window_first = max(0, -(-(touching_first - PNET_WINDOW + 1) // _PNET_STRIDE))
    window_last = min(pnet_windows_along(size) - 1, touching_last // _PNET_STRIDE)
    if window_first > window_last:
        return None
    stop = min(window_last * _PNET_STRIDE + PNET_WINDOW, size)
    return window_first * _PNET_STRIDE, stop


def area_bins(length: int, size: int, span: tuple[int, int]) -> NDArray[np.int64]:
    """Image pixels of pixels `span` of an axis of `length` pixels area-resized to `size`.

    The whole-pixel bins of `adaptive_avg_pool2d`, which facenet-pytorch's
    `interpolate(mode="area")` calls: pixel i averages image pixels
    floor(i·length/size) to ceil((i + 1)·length/size). Returns (2, n): each
    bin's past-the-end pixel, then its first.
    """
    index = np.arange(span[0], span[1])
    return np.stack((-(-(index + 1) * length // size), index * length // size))


def scan_pixels(table: torch.Tensor, scan: PyramidScan, *, shift: torch.Tensor) -> torch.Tensor:
    """A scan's pixels, read off the summed-area `table` and normalised: (1, 3, h, w).

    Built as (h, w, 3), the result is a channels-last tensor with no copy.
    """
    height, width = scan.weight.shape[:2]
    if scan.corners is not None:
        corners = table.view(-1, 3).index_select(0, scan.corners).view(4, height, width, 3)
        sums = corners[0] - corners[1] - corners[2] + corners[3]
    else:
        assert scan.rows is not None and scan.cols is not None
        band = table.index_select(0, scan.rows).view(2, height, -1, 3)
        band = band[0] - band[1]
        sums = band.index_select(1, scan.cols).view(height, 2, width, 3)
        sums = sums[:, 0] - sums[:, 1]
    return torch.addcmul(shift, sums, scan.weight).permute(2, 0, 1).unsqueeze(0)


def crop_boxes(
    table: torch.Tensor, boxes: Boxes, *, size: int, shift: torch.Tensor
) -> tuple[torch.Tensor, Boxes]:
    """Every box's pixels, clipped to the image and area-resized to `size`², at once.

    As in facenet-pytorch's `pad`, each box is truncated to integers and
    clipped to the image, naming the 1-based inclusive pixels `[x1, x2]`, that
    is the 0-based `[x1 − 1, x2)`. Boxes wholly outside the image have no
    pixels and are dropped (facenet-pytorch drops their crops but keeps the
    boxes, misaligning the two). Returns the normalised (B, 3, size, size)
    channels-last crops and the boxes kept.
    """
    height, width = table.shape[0] - 1, table.shape[1] - 1
    corners = np.trunc(boxes[:, :4]).astype(np.int64)
    left_top = np.maximum(corners[:, 0:2], 1) - 1
    right_bottom = np.minimum(corners[:, 2:4], (width, height))
    inside = (right_bottom > left_top).all(axis=1)
    flat, weight = _crop_bins(left_top[inside], right_bottom[inside], size=size, stride=width + 1)
    index = torch.from_numpy(flat.ravel()).to(table.device)
    corner_sums = table.view(-1, 3).index_select(0, index).view(*flat.shape, 3)
    sums = corner_sums[:, 0, :, 0] - corner_sums[:, 1, :, 0]
    sums = sums - corner_sums[:, 0, :, 1] + corner_sums[:, 1, :, 1]
    crops = torch.addcmul(shift, sums, torch.from_numpy(weight).to(table.device))
    return crops.permute(0, 3, 1, 2), boxes[inside]


def _crop_bins(
    left_top: NDArray[np.int64], right_bottom: NDArray[np.int64], *, size: int, stride: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Where to read each crop pixel's bin corners off the table, and what to scale its sum by.

    Returns flat table indices, (B, 2, size, 2, size) for (box, row end or
    start, row, column end or start, column), and (B, size, size, 1) weights.
    """
    extent = (right_bottom - left_top)[:, :, None]
    index = np.arange(size)
    # (B, axis, end or start, size): as in `area_bins`, each bin's past-the-end and first pixel.
    bins = np.stack((-(-(index + 1) * extent // size), index * extent // size), axis=2)
    bins += left_top[:, :, None, None]
    cols, rows = bins[:, 0], bins[:, 1]
    flat = rows[:, :, :, None, None] * stride + cols[:, None, None, :, :]
    counts = (rows[:, 0] - rows[:, 1])[:, :, None] * (cols[:, 0] - cols[:, 1])[:, None, :]
    return flat, (_PIXEL_SCALE / counts[..., None]).astype(np.float32)


def pnet_windows(
    picked: NDArray[np.int64], found: NDArray[np.float32], plan: PyramidPlan
) -> tuple[Boxes, NDArray[np.int64]]:
    """Boxes of the P-Net windows `picked` among all of `plan`'s, and the level of each.

    `found` holds each picked window's score and four offsets. Returns (N, 9)
    rows of box (image pixels), score and offsets, as facenet-pytorch's
    `generateBoundingBox`, and (N,) levels.
    """
    levels = np.searchsorted(plan.starts, picked, side="right") - 1
    index, grids = picked - plan.starts[levels], plan.grids[levels]
    window = np.stack((index % grids[:, 2], index // grids[:, 2]), axis=1) + grids[:, :2]
    corner = (window * _PNET_STRIDE).astype(np.float32)
    scales = plan.scales[levels, None]
    top_left = np.floor((corner + 1) / scales)
    bottom_right = np.floor((corner + PNET_WINDOW) / scales)
    return np.concatenate((top_left, bottom_right, found), axis=1), levels


def box_nms(boxes: Boxes, threshold: float, *, groups: NDArray[np.int64] | None = None) -> Index:
    """torchvision's NMS, as facenet-pytorch uses it, on (N, 5+) boxes and scores.

    Within each group separately when `groups` is given. Returns the indices
    kept, most confident first.
    """
    corners, scores = torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4])
    if groups is None:
        keep = nms(corners, scores, threshold)
    else:
        keep = batched_nms(corners, scores, torch.from_numpy(groups), threshold)
    kept: Index = keep.numpy()
    return kept


def shift_pnet_windows(windows: Boxes) -> Boxes:
    """Apply P-Net's regression to its windows: (N, 5) boxes and scores.

    Unlike the later stages, facenet-pytorch scales these offsets by `x2 − x1`
    (no `+ 1`); kept so that stage 1 proposes the same boxes.
    """
    size = np.tile(windows[:, 2:4] - windows[:, 0:2], 2)
    corners = windows[:, :4] + windows[:, 5:9] * size
    return np.concatenate((corners, windows[:, 4:5]), axis=1)


def regress(boxes: Boxes, offsets: NDArray[np.float32]) -> Boxes:
    """Move each box's corners by `offsets` times its inclusive width and height."""
    size = np.tile(boxes[:, 2:4] - boxes[:, 0:2] + 1, 2)
    return np.concatenate((boxes[:, :4] + offsets * size, boxes[:, 4:]), axis=1)


def square(boxes: Boxes) -> Boxes:
    """Grow each box to a square about its centre, its side the longer of its two."""
    size = boxes[:, 2:4] - boxes[:, 0:2]
    side = size.max(axis=1, keepdims=True)
    top_left = boxes[:, 0:2] + size * 0.5 - side * 0.5
    return np.concatenate((top_left, top_left + side, boxes[:, 4:]), axis=1)


def place_landmarks(boxes: Boxes, points: NDArray[np.float32]) -> NDArray[np.float32]:
    """O-Net's landmarks, given as fractions of each box, in image pixels: (N, 5, 2)."""
    size = boxes[:, 2:4] - boxes[:, 0:2] + 1
    relative = points.reshape(-1, 2, 5).transpose(0, 2, 1)
    return relative * size[:, None, :] + boxes[:, None, 0:2] - 1


def nms_min(boxes: Boxes, threshold: float) -> Index:
    """Greedy NMS of (N, 5) boxes and scores, overlap measured over the *smaller* box.

    MTCNN ends with it so that a box inside a larger one of the same face is
    dropped. As facenet-pytorch's `nms_numpy`: areas count inclusive pixels
    (`+ 1`), and the same ascending `argsort` orders the scores, so that ties
    (scores of exactly 1.0 are common) resolve alike. Returns the indices
    kept, most confident first.
    """
    area = np.prod(boxes[:, 2:4] - boxes[:, 0:2] + 1, axis=1)
    top_left = np.maximum(boxes[:, None, 0:2], boxes[None, :, 0:2])
    bottom_right = np.minimum(boxes[:, None, 2:4], boxes[None, :, 2:4])
    inter = np.prod(np.maximum(0.0, bottom_right - top_left + 1), axis=2)
    overlap = inter / np.minimum(area[:, None], area[None, :])
    order, keep = np.argsort(boxes[:, 4]), []
    while order.size:
        best, order = order[-1], order[:-1]
        keep.append(best)
        order = order[overlap[best, order] <= threshold]
    return np.array(keep, np.int64)
