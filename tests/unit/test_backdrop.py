"""The backdrop key on small generated studio shots, one case each: a ring's hole, a 2 px
chain, a soft shadow, a coloured backdrop, a cluttered scene, a doubtful cut-out."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from imgpipe_assets.imaging import gates
from imgpipe_assets.imaging.backdrop import Keyed, key
from imgpipe_assets.imaging.pipeline import Cutout, cut_out, frame_alpha

SIZE = 512  # a short side the resolution gate passes
Paint = Callable[[ImageDraw.ImageDraw], None]


class ModelStandIn:
    """What a salient-object model answers on jewellery: a blurred blob over the product's
    box, holes filled, thin parts beyond the blob dropped."""

    name = "stand-in"

    def __init__(self, box: tuple[float, float, float, float]) -> None:
        self.box = box  # left, top, right, bottom as fractions of the frame

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        alpha = np.zeros((h, w), np.float32)
        x0, y0, x1, y1 = self.box
        alpha[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)] = 1.0
        return ndimage.gaussian_filter(alpha, 2.0)


def studio(
    paint: Paint,
    backdrop: tuple[int, int, int] = (236, 234, 230),
    shadow: tuple[float, float, float, float] | None = None,
    noise: float = 1.5,
) -> tuple[bytes, np.ndarray]:
    """A JPEG of what ``paint`` draws (in white on a mask, coloured on a layer) on studio
    paper with a gentle sweep and vignette, an optional soft shadow (left, top, right,
    bottom fractions), sensor noise; and the product's true coverage."""
    layer = Image.new("RGB", (SIZE * 2, SIZE * 2), (0, 0, 0))
    cover = Image.new("L", (SIZE * 2, SIZE * 2), 0)

    class Both:
        """Draws every shape on the colour layer and the coverage mask at once."""

        def __getattr__(self, name: str) -> Callable[..., None]:
            def call(*args: object, **kw: object) -> None:
                getattr(ImageDraw.Draw(layer), name)(*args, **kw)
                solid = {k: 255 for k in ("fill", "outline") if k in kw}
                getattr(ImageDraw.Draw(cover), name)(*args, **{**kw, **solid})

            return call

    paint(Both())  # type: ignore[arg-type]
    colour = np.asarray(layer.resize((SIZE, SIZE), Image.Resampling.BOX), np.float32)
    alpha = np.asarray(cover.resize((SIZE, SIZE), Image.Resampling.BOX), np.float32) / 255.0
    colour = colour / np.maximum(alpha[..., None], 1e-3)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    paper = np.array(backdrop, np.float32) * (1 - 0.06 * yy - 0.08 * ((xx - 0.5) ** 2))[..., None]
    if shadow is not None:
        x0, y0, x1, y1 = (int(v * SIZE) for v in shadow)
        dark = np.zeros((SIZE, SIZE), np.float32)
        dark[y0:y1, x0:x1] = 1.0
        paper *= (1 - 0.35 * ndimage.gaussian_filter(dark, SIZE * 0.03))[..., None]
    img = colour * alpha[..., None] + paper * (1 - alpha[..., None])
    img = ndimage.gaussian_filter(img, (0.5, 0.5, 0))  # lens softness
    img += np.random.default_rng(0).normal(0, noise, img.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=92)
    return buf.getvalue(), alpha


def key_of(data: bytes, model_box: tuple[float, float, float, float]) -> tuple[Cutout, np.ndarray]:
    cut = cut_out(data, ModelStandIn(model_box), work_px=SIZE)
    return cut, frame_alpha(cut, cut.width, cut.height)


def test_a_rings_hole_is_cut_out_and_its_band_kept() -> None:
    def band(draw: ImageDraw.ImageDraw) -> None:  # a silver band seen from above
        draw.ellipse((260, 300, 700, 660), outline=(150, 152, 160), width=44)

    data, truth = studio(band)
    cut, alpha = key_of(data, (0.25, 0.28, 0.75, 0.72))  # the model fills the ring
    assert cut.stats.keyed and cut.stats.holes_opened >= 1
    inside = ndimage.binary_fill_holes(truth > 0.5) & ~ndimage.binary_dilation(
        truth > 0.01, iterations=3
    )
    assert inside.sum() > 5000
    assert (alpha[inside] < 0.1).mean() > 0.99  # the hole shows the new theme
    band_px = ndimage.binary_erosion(truth > 0.99, iterations=2)
    assert (alpha[band_px] > 0.9).mean() > 0.99
    verdicts = gates.grade(cut.stats)
    assert not gates.doubtful(verdicts) and not gates.blocking(verdicts)


def test_a_two_pixel_chain_is_kept_to_the_frame_edge_with_its_pendant() -> None:
    def pendant(draw: ImageDraw.ImageDraw) -> None:
        # A 2 px chain (4 px at twice the size) from the top edge to a pendant.
        draw.line([(300, 0), (480, 560)], fill=(212, 170, 70), width=4)
        draw.line([(660, 0), (480, 560)], fill=(212, 170, 70), width=4)
        draw.ellipse((420, 540, 540, 700), fill=(30, 120, 200))

    data, truth = studio(pendant)
    cut, alpha = key_of(data, (0.42, 0.55, 0.58, 0.74))  # the model sees the pendant only
    assert cut.stats.keyed and cut.stats.edge_contact > 0  # the crop reaches the frame's top
    chain = (truth > 0.5) & (np.arange(SIZE)[:, None] < 260)
    assert chain.sum() > 300
    assert (alpha[chain] >= 0.5).mean() > 0.9
    # Connected: one piece from the frame's top edge to the pendant.
    labels, _ = ndimage.label(alpha >= 0.5, structure=np.ones((3, 3)))
    top_piece = set(np.unique(labels[0][labels[0] > 0]))
    pendant_piece = labels[310, 240]
    assert pendant_piece in top_piece
    # Soft: the chain's edge has partial alpha, not a hard 0/1 staircase.
    near = ndimage.binary_dilation(chain, iterations=1) & ~chain
    assert ((alpha[near] > 0.05) & (alpha[near] < 0.95)).any()


def test_a_chain_seen_in_pieces_is_kept_where_it_leaves_the_frame() -> None:
    """A fine chain's links read as dashes; the last ones, at the frame's rim, meet the
    pendant only through the others, and are the product's, not the paper's."""

    def pendant(draw: ImageDraw.ImageDraw) -> None:
        for x0, x1 in ((300, 480), (660, 480)):  # links of 6 px with 3 px between them
            for t in np.arange(0.0, 1.0, 18 / 580):
                a, b = t, min(1.0, t + 12 / 580)
                draw.line(
                    [(x0 + (x1 - x0) * a, 560 * a), (x0 + (x1 - x0) * b, 560 * b)],
                    fill=(212, 170, 70),
                    width=4,
                )
        draw.ellipse((420, 540, 540, 700), fill=(30, 120, 200))

    data, truth = studio(pendant)
    cut, alpha = key_of(data, (0.42, 0.55, 0.58, 0.74))  # the model sees the pendant only
    assert cut.stats.keyed
    rim = (truth > 0.5) & (np.arange(SIZE)[:, None] < 12)  # the chain's last stretch
    assert rim.sum() > 40
    assert (alpha[rim] >= 0.5).mean() > 0.8


def test_a_faint_speck_beside_a_chain_is_not_an_opaque_part() -> None:
    """Colour bled beside a fine chain (or a faint mark on the paper) is no wire of its
    own: it must not come out as an opaque speck of backdrop colour on a new theme."""
    paper = (236, 234, 230)

    def pendant(draw: ImageDraw.ImageDraw) -> None:
        draw.line([(300, 0), (480, 560)], fill=(150, 110, 40), width=4)
        draw.line([(660, 0), (480, 560)], fill=(150, 110, 40), width=4)
        draw.ellipse((420, 540, 540, 700), fill=(30, 120, 200))
        # A faint mark a few pixels beside the right-hand chain.
        draw.line([(600, 200), (616, 200)], fill=(226, 220, 196), width=4)

    data, truth = studio(pendant, backdrop=paper)
    cut, alpha = key_of(data, (0.42, 0.55, 0.58, 0.74))
    assert cut.stats.keyed
    chain = (truth > 0.5) & (np.arange(SIZE)[:, None] < 260)
    assert (alpha[chain] >= 0.5).mean() > 0.9  # the chain stays
    speck = alpha[97:103, 303:311]
    assert speck.max() < 0.75  # mixed against the chain's colour, not opaque


def test_a_soft_shadow_is_left_out_of_the_alpha() -> None:
    def box(draw: ImageDraw.ImageDraw) -> None:
        draw.rectangle((340, 300, 620, 560), fill=(60, 40, 110))

    data, truth = studio(box, shadow=(0.36, 0.5, 0.78, 0.72))
    cut, alpha = key_of(data, (0.33, 0.29, 0.67, 0.61))
    shadow_only = np.zeros_like(truth, bool)
    shadow_only[int(0.6 * SIZE) : int(0.7 * SIZE), int(0.4 * SIZE) : int(0.75 * SIZE)] = True
    shadow_only &= ~ndimage.binary_dilation(truth > 0.01, iterations=3)
    assert shadow_only.sum() > 1000
    assert (alpha[shadow_only] < 0.05).mean() > 0.99
    assert cut.stats.shadow_share > 0


Stone = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # rows, cols, radius, angle


def _keyed_stone(
    paint: Callable[[Stone], tuple[np.ndarray, np.ndarray]], shadow_px: float, seed: int
) -> tuple[Keyed, Stone, np.ndarray]:
    """The key's answer on a round stone (60 px, lit at 250) on paper at 230 with a contact
    shadow ``shadow_px`` soft, darkest (0.7) at the rim. ``paint`` gets the frame's rows,
    columns, radius and angle from the centre (90 is down, 180 is left) and returns the
    facet as dark as that shadow and the dark lines (outline, facet edges). Also returns
    the grids and the facet."""
    n = 240
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    r = np.hypot(yy - n / 2, xx - n / 2)
    angle = np.degrees(np.arctan2(yy - n / 2, xx - n / 2))
    grid = (yy, xx, r, angle)
    k = 1 - 0.3 * np.exp(-((np.clip(r - 60, 0, None) / shadow_px) ** 2))
    plane = np.full((n, n, 3), 230.0, np.float32)
    img = plane * k[..., None]
    disc = r <= 60
    img[disc] = 250.0
    facet, lines = paint(grid)
    img[facet] = 230.0 * 0.7
    img[lines] = 100.0
    img = ndimage.gaussian_filter(img, (0.6, 0.6, 0))
    img += np.random.default_rng(seed).normal(0, 1.0, img.shape)
    rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    model = ndimage.gaussian_filter(disc.astype(np.float32), 4)
    return key(rgb, plane, model), grid, facet


def test_a_facet_as_pale_as_the_shadow_beside_it_is_kept() -> None:
    """A stone's lower-left facet has the colour of the shadow beside it, and the lens
    left its outline open for three pixels there: the flood of backdrop and shadow must
    not pour through that gap into the stone."""

    def quartered(grid: Stone) -> tuple[np.ndarray, np.ndarray]:
        yy, xx, r, angle = grid
        facet = (r <= 60) & (angle >= 90) & (angle <= 180)
        outline = (r > 57) & (r <= 60) & ~((angle > 132) & (angle < 138))  # open for 3 px
        cross = (r <= 60) & ((np.abs(yy - 120) < 1.5) | (np.abs(xx - 120) < 1.5))
        return facet, outline | cross

    keyed, (yy, xx, r, _), facet = _keyed_stone(quartered, shadow_px=14, seed=1)
    inside = facet & (r < 52) & (np.abs(yy - 120) > 5) & (np.abs(xx - 120) > 5)
    assert inside.sum() > 1500
    assert (keyed.alpha[inside] > 0.9).mean() > 0.98
    assert (keyed.alpha[r > 75] < 0.05).mean() > 0.99  # the shadow is still left out


def test_a_stones_rim_facet_open_to_its_shadow_over_a_broad_front_is_kept() -> None:
    """A round stud's facet between its outline and a facet line is as dark as its soft
    contact shadow, and the outline is invisible along a sixth of the rim: the flood takes
    the facet over a broad front, not through a gap. The stud is compact, so that bite out
    of it is product; the gap between two blocks that touch, which crosses their outline,
    stays open."""

    def rim_facet(grid: Stone) -> tuple[np.ndarray, np.ndarray]:
        _, xx, r, angle = grid
        strip = (r <= 60) & (xx < 120 - 35)  # the rim facet, left of a facet line
        outline = (r > 57) & (r <= 60) & (np.abs(angle) <= 150)  # open over 60° on the left
        line = (r <= 60) & (np.abs(xx - (120 - 35)) < 1.5)
        return strip, outline | line

    keyed, (_, xx, r, _), strip = _keyed_stone(rim_facet, shadow_px=30, seed=5)
    # Within the chord between the outline's two ends (the outline is what says where the
    # stone is; its hull reaches that far).
    inside = strip & (r < 55) & (xx > 120 - 50) & (xx < 120 - 38)
    assert inside.sum() > 500
    assert (keyed.alpha[inside] > 0.9).mean() > 0.95
    assert (keyed.alpha[r > 75] < 0.05).mean() > 0.99  # the shadow is still left out

    def touching_blocks(yy: np.ndarray, xx: np.ndarray, img: np.ndarray) -> np.ndarray:
        img[(np.abs(yy - 120) < 40) & (xx > 40) & (xx < 200) & ((xx < 118) | (xx >= 121))] = 90
        img[(np.abs(yy - 120) < 2) & (xx >= 118) & (xx < 121)] = 90  # joined at the middle
        return img

    alpha, _, yy, xx = _keyed_on_grey(touching_blocks)
    assert (alpha[(np.abs(yy - 120) > 6) & (np.abs(yy - 120) < 35) & (xx == 119)] < 0.5).all()


def test_colour_smeared_past_the_edge_is_not_taken_for_coverage() -> None:
    """A JPEG keeps colour at lower resolution than brightness: beside a peach part
    nearly as bright as its paper, the colour spreads pixels beyond the edge that the
    brightness says are paper. The edge's alpha follows the brightness."""
    n = 200
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    r = np.hypot(yy - 100, xx - 100)
    cover = np.clip(60.5 - r, 0, 1)  # a disc with an anti-aliased rim
    plane = np.full((n, n, 3), 200.0, np.float32)
    peach = np.array([235.0, 185.0, 120.0], np.float32)
    img = peach * cover[..., None] + plane * (1 - cover[..., None])
    img = ndimage.gaussian_filter(img, (0.6, 0.6, 0))
    grey = img.mean(axis=2, keepdims=True)
    img = grey + ndimage.gaussian_filter(img - grey, (2.0, 2.0, 0))
    img += np.random.default_rng(2).normal(0, 1.0, img.shape)
    rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    model = ndimage.gaussian_filter((r < 60).astype(np.float32), 3)

    keyed = key(rgb, plane, model)
    just_outside = (r > 61.5) & (r < 64)
    assert keyed.alpha[just_outside].mean() < 0.008  # 0.02 when colour counts in full
    rim = (r > 55) & (r < 66)
    assert abs(keyed.alpha[rim].sum() / cover[rim].sum() - 1) < 0.05


def test_a_thick_parts_edge_softened_by_the_lens_takes_no_paper_colour() -> None:
    """A soft lens mixes paper into a gold part four pixels in from its edge. Laid on navy,
    the cut-out's rim is the gold's, not a pale ring of the old paper."""
    n = 200
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    r = np.hypot(yy - 100, xx - 100)
    cover = np.clip(60.5 - r, 0, 1)
    plane = np.full((n, n, 3), 225.0, np.float32)
    gold = np.array([170.0, 120.0, 40.0], np.float32)
    img = gold * cover[..., None] + plane * (1 - cover[..., None])
    img = ndimage.gaussian_filter(img, (1.4, 1.4, 0))
    img += np.random.default_rng(3).normal(0, 1.0, img.shape)
    rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    model = ndimage.gaussian_filter((r < 60).astype(np.float32), 3)

    keyed = key(rgb, plane, model)
    navy = np.array([20.0, 23.0, 41.0], np.float32)
    shown = keyed.rgb * keyed.alpha[..., None] + navy * (1 - keyed.alpha[..., None])
    ideal = gold * cover[..., None] + navy * (1 - cover[..., None])
    rim = (r > 53) & (r < 64)
    assert np.abs(shown - ideal).max(axis=2)[rim].mean() < 20  # 26 matted 3 px deep


def _keyed_on_grey(
    paint: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """The key's alpha and hole count for what ``paint`` draws (given row and column
    grids and a plain grey photo) on grey paper, with lens softness and noise."""
    n = 240
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    plane = np.full((n, n, 3), 200.0, np.float32)
    img = paint(yy, xx, plane.copy())
    cover = np.abs(img - plane).max(axis=2) > 0
    img = ndimage.gaussian_filter(img, (0.6, 0.6, 0))
    img += np.random.default_rng(4).normal(0, 1.0, img.shape)
    rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    model = ndimage.gaussian_filter(ndimage.binary_fill_holes(cover).astype(np.float32), 4)
    keyed = key(rgb, plane, model)
    return keyed.alpha, keyed.holes, yy, xx


def test_the_gap_between_two_links_is_cut_out() -> None:
    def links(yy: np.ndarray, xx: np.ndarray, img: np.ndarray) -> np.ndarray:
        img[(np.abs(yy - 120) < 40) & (((xx > 40) & (xx < 118)) | ((xx > 120) & (xx < 200)))] = 90
        return img

    alpha, holes, yy, xx = _keyed_on_grey(links)
    assert holes >= 1
    assert (alpha[(np.abs(yy - 120) < 35) & (xx >= 118) & (xx < 120)] < 0.5).all()


def test_shading_that_passes_through_the_papers_brightness_is_no_gap() -> None:
    """A sphere lit from above is brighter than the paper at the top and darker below:
    along the line where it matches the paper, |photo - paper| has a valley that crosses
    the part from rim to rim like the gap between two links, but it is the part's surface."""

    def sphere(yy: np.ndarray, xx: np.ndarray, img: np.ndarray) -> np.ndarray:
        disc = np.hypot(yy - 120, xx - 120) <= 70
        img[disc] = (200 + 30 * np.tanh((120 - yy) / 3))[disc][:, None]
        return img

    alpha, holes, yy, xx = _keyed_on_grey(sphere)
    inside = np.hypot(yy - 120, xx - 120) <= 66
    assert holes == 0
    assert (alpha[inside] > 0.9).all()


def test_a_coloured_backdrop_does_not_fringe_the_edge() -> None:
    product = np.array([40, 60, 200], np.float32)

    def disc(draw: ImageDraw.ImageDraw) -> None:
        draw.ellipse((300, 300, 660, 660), fill=tuple(int(v) for v in product))

    pink = (235, 150, 170)
    data, truth = studio(disc, backdrop=pink)
    cut, alpha = key_of(data, (0.3, 0.3, 0.7, 0.7))
    # The cut-out's colour where the edge is partly transparent: the product's, not pink.
    top, left, bottom, right = cut.crop
    edge = (cut.alpha > 0.15) & (cut.alpha < 0.85)
    assert edge.sum() > 100
    colour = cut.rgb[edge].astype(np.float32)
    to_product = np.linalg.norm(colour - product, axis=1).mean()
    to_pink = np.linalg.norm(colour - np.array(pink, np.float32), axis=1).mean()
    assert to_product < to_pink / 5
    # Laid on navy, the edge band matches the ideal cut-out laid on navy.
    navy = np.array([20, 23, 41], np.float32)
    frame = np.zeros((cut.height, cut.width, 3), np.float32)
    frame[top:bottom, left:right] = cut.rgb
    mine = frame * alpha[..., None] + navy * (1 - alpha[..., None])
    want = product * truth[..., None] + navy * (1 - truth[..., None])
    band = ndimage.binary_dilation(truth > 0.5, iterations=3) & ~ndimage.binary_erosion(
        truth > 0.5, iterations=3
    )
    assert np.abs(mine - want)[band].mean() < 12


def test_a_cluttered_scene_is_left_to_the_model() -> None:
    rng = np.random.default_rng(3)
    scene = ndimage.gaussian_filter(rng.uniform(0, 255, (SIZE, SIZE, 3)), (6, 6, 0))
    scene = (scene - scene.mean()) * 4 + 128
    buf = io.BytesIO()
    Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    model = ModelStandIn((0.3, 0.3, 0.7, 0.7))
    cut = cut_out(buf.getvalue(), model, work_px=SIZE)
    assert not cut.stats.keyed and cut.model == "stand-in"
    alpha = frame_alpha(cut, cut.width, cut.height)
    expected = model.predict(np.zeros((SIZE, SIZE, 3), np.uint8)) >= 0.5
    got = alpha >= 0.5
    assert (got & expected).sum() / (got | expected).sum() > 0.8  # the model's own answer


def test_a_white_product_the_key_cannot_see_is_held_for_review() -> None:
    def white_box(draw: ImageDraw.ImageDraw) -> None:
        draw.rectangle((320, 320, 640, 640), fill=(228, 226, 222))  # nearly the paper

    data, truth = studio(white_box)
    cut = cut_out(data, ModelStandIn((0.33, 0.33, 0.67, 0.67)), work_px=SIZE)
    verdicts = gates.grade(cut.stats)
    assert not gates.blocking(verdicts)
    assert "agreement" in [v.gate for v in gates.doubtful(verdicts)]
    assert not cut.stats.keyed  # the model's cut-out is the one kept
    alpha = frame_alpha(cut, cut.width, cut.height)
    assert (alpha[truth > 0.99] >= 0.5).mean() > 0.9


def test_a_haze_of_alpha_is_held_for_review() -> None:
    haze = np.full((200, 200), 0.4, np.float32)
    haze[20:180, 20:180] = 0.5
    stats = gates.with_alpha_shape(gates.measure(haze, 200, 200), haze, None)
    assert stats.semi_transparent > 0.5
    (verdict,) = [v for v in gates.grade(stats) if v.gate == "transparency"]
    assert verdict.outcome == "review" and "semi-transparent" in verdict.reason
