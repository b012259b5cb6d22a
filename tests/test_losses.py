"""The MCL-Net losses against hand-computed values and independent formulas (float64 numpy references)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mclrt.training import losses
from mclrt.training.correspondence import correspondence_softmax
from mclrt.training.losses import (
    ContextualLayer,
    MCLSettings,
    additive_angular_margin,
    contextual_loss,
    cycle_consistency_loss,
    discriminator_feature_matching_loss,
    feature_consistency_loss,
    fsesim_structure_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    marginal_contrastive_loss,
    multilayer_contextual_loss,
    perceptual_loss,
    pseudo_pair_loss,
    sample_positions,
    self_similarity_rows,
    vgg_feature_matching_loss,
    warped_label_loss,
)


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- independent references (numpy, float64) -------------------------------------------------------


def _unit_rows(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _sampled(feat: torch.Tensor, positions: torch.Tensor) -> np.ndarray:
    """[B,C,H,W] -> [B,S,C] float64 at the given flat positions."""
    a = feat.detach().double().numpy()
    return a.reshape(a.shape[0], a.shape[1], -1)[:, :, positions.numpy()].transpose(0, 2, 1)


def _marginal_infonce_reference(anchors: np.ndarray, others: np.ndarray, margin: float, tau: float) -> float:
    """The paper's formula, written out: -log e^{s cos(theta_ii+m)} / (e^{s cos(theta_ii+m)} + sum_{j!=i} e^{s cos theta_ij})."""
    total, count = 0.0, 0
    for a_img, o_img in zip(_unit_rows(anchors), _unit_rows(others)):
        for i in range(a_img.shape[0]):
            cosines = o_img @ a_img[i]
            positive = math.cos(math.acos(cosines[i]) + margin) / tau
            negatives = np.delete(cosines, i) / tau
            log_denominator = np.logaddexp(positive, np.logaddexp.reduce(negatives))
            total += log_denominator - positive
            count += 1
    return total / count


# --- marginal contrastive loss ------------------------------------------------------------------------


def test_mcl_with_zero_margin_is_plain_infonce():
    torch.manual_seed(1)
    fx, fy = torch.randn(2, 32, 6, 6), torch.randn(2, 32, 6, 6)
    positions = sample_positions(6, 6, 20, _seeded(7))
    x, y = _sampled(fx, positions), _sampled(fy, positions)
    got = marginal_contrastive_loss(fx, fy, num_positions=20, margin=0.0, tau=0.07, bidirectional=False, generator=_seeded(7))
    assert got.item() == pytest.approx(_marginal_infonce_reference(x, y, 0.0, 0.07), rel=1e-4)

    # torch's cross-entropy over the same logits: a second, library-based formulation
    xu, yu = torch.from_numpy(_unit_rows(x)), torch.from_numpy(_unit_rows(y))
    logits = torch.bmm(xu, yu.transpose(1, 2)) / 0.07
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.arange(20).repeat(2))
    assert got.item() == pytest.approx(ce.item(), rel=1e-4)


def test_mcl_matches_the_papers_formula_with_margin_both_directions():
    torch.manual_seed(2)
    fx, fy = torch.randn(3, 16, 5, 5), torch.randn(3, 16, 5, 5)
    positions = sample_positions(5, 5, 12, _seeded(3))
    x, y = _sampled(fx, positions), _sampled(fy, positions)
    expected = _marginal_infonce_reference(x, y, 0.4, 0.07) + _marginal_infonce_reference(y, x, 0.4, 0.07)
    got = marginal_contrastive_loss(fx, fy, num_positions=12, margin=0.4, tau=0.07, generator=_seeded(3))
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_mcl_grows_with_the_margin():
    torch.manual_seed(3)
    fx, fy = torch.randn(2, 16, 6, 6), torch.randn(2, 16, 6, 6)
    values = [marginal_contrastive_loss(fx, fy, margin=m, generator=_seeded(0)).item() for m in (0.0, 0.2, 0.4, 0.8)]
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_margin_formula_against_arccos():
    cosines = torch.tensor([-0.9, -0.3, 0.0, 0.5, 0.99], dtype=torch.float64)
    expected = [math.cos(math.acos(c) + 0.4) for c in cosines.tolist()]
    assert additive_angular_margin(cosines, 0.4).tolist() == pytest.approx(expected, abs=1e-9)


def test_reference_code_settings_and_positions_shared_and_reproducible():
    settings = MCLSettings.reference_code()
    assert (settings.num_positions, settings.margin, settings.tau) == (64, 0.25, 0.05)
    assert not settings.bidirectional and settings.detach_y and not settings.use_projection_head
    paper = MCLSettings.paper()
    assert (paper.num_positions, paper.margin, paper.tau, paper.bidirectional) == (256, 0.4, 0.07, True)

    torch.manual_seed(4)
    fx, fy = torch.randn(2, 8, 16, 16), torch.randn(2, 8, 16, 16)
    first = marginal_contrastive_loss(fx, fy, **settings.loss_kwargs(), generator=_seeded(5))
    again = marginal_contrastive_loss(fx, fy, **settings.loss_kwargs(), generator=_seeded(5))
    other = marginal_contrastive_loss(fx, fy, **settings.loss_kwargs(), generator=_seeded(6))
    assert first.item() == again.item() and first.item() != other.item()
    positions = sample_positions(16, 16, 64, _seeded(5))
    expected = _marginal_infonce_reference(_sampled(fx, positions), _sampled(fy, positions), 0.25, 0.05)
    assert first.item() == pytest.approx(expected, rel=1e-4)


def test_mcl_detach_y_sends_gradients_only_to_the_condition_branch():
    torch.manual_seed(5)
    head_x, head_y = torch.nn.Linear(8, 4), torch.nn.Linear(8, 4)
    fx = torch.randn(2, 8, 4, 4, requires_grad=True)
    fy = torch.randn(2, 8, 4, 4, requires_grad=True)
    marginal_contrastive_loss(fx, fy, head_x=head_x, head_y=head_y, detach_y=True, generator=_seeded()).backward()
    assert fy.grad is None and head_y.weight.grad is None
    assert fx.grad.abs().sum() > 0 and head_x.weight.grad.abs().sum() > 0

    fx.grad = None
    marginal_contrastive_loss(fx, fy, head_x=head_x, head_y=head_y, generator=_seeded()).backward()
    assert fy.grad.abs().sum() > 0 and head_y.weight.grad.abs().sum() > 0 and fx.grad.abs().sum() > 0


def test_mcl_projection_heads_change_widths():
    fx, fy = torch.randn(2, 12, 4, 4), torch.randn(2, 20, 4, 4)
    loss = marginal_contrastive_loss(fx, fy, head_x=torch.nn.Linear(12, 6), head_y=torch.nn.Linear(20, 6), generator=_seeded())
    assert torch.isfinite(loss)


# --- numerical safety: identical, opposite and zero vectors, values and gradients -----------------------


def _twins(kind: str, shape=(2, 8, 6, 6)):
    torch.manual_seed(6)
    a = torch.randn(*shape)
    b = {"identical": a.clone(), "opposite": -a, "zero": torch.zeros_like(a)}[kind]
    if kind == "zero":
        a = torch.zeros_like(a)
    return a.requires_grad_(), b.requires_grad_()


LOSS_CASES = {
    "mcl": lambda a, b: marginal_contrastive_loss(a, b, generator=_seeded()),
    "mcl_reference": lambda a, b: marginal_contrastive_loss(a, b, **MCLSettings.reference_code().loss_kwargs(), generator=_seeded()),
    "feature_consistency": feature_consistency_loss,
    "contextual_position": contextual_loss,
    "contextual_spatial": lambda a, b: contextual_loss(a, b, center="spatial"),
    "perceptual": perceptual_loss,
    "fsesim": lambda a, b: fsesim_structure_loss(a, b, window=4, generator=_seeded()),
    "cycle": lambda a, b: cycle_consistency_loss(
        torch.nn.functional.normalize(a.flatten(2).transpose(1, 2), dim=-1, eps=1e-7),
        torch.nn.functional.normalize(b.flatten(2).transpose(1, 2), dim=-1, eps=1e-7),
        a.flatten(2).transpose(1, 2)[..., :3],
        b.flatten(2).transpose(1, 2)[..., :3],
    ),
}


@pytest.mark.parametrize("kind", ["identical", "opposite", "zero"])
@pytest.mark.parametrize("name", sorted(LOSS_CASES))
def test_no_nan_for_identical_opposite_or_zero_vectors(name, kind):
    a, b = _twins(kind)
    loss = LOSS_CASES[name](a, b)
    loss.backward()
    assert torch.isfinite(loss), loss
    assert torch.isfinite(a.grad).all()
    if b.grad is not None:
        assert torch.isfinite(b.grad).all()


def test_margin_is_finite_at_the_clamp_edges_in_float32():
    c = torch.tensor([1.0, -1.0, 1.0 + 1e-7, -1.0 - 1e-7], requires_grad=True)
    value = additive_angular_margin(c, 0.4)
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(c.grad).all()


# --- feature consistency, cycle, pseudo pairs -------------------------------------------------------


def test_feature_consistency_compares_directions():
    same_direction = feature_consistency_loss(torch.full((1, 2, 3, 3), 2.0), torch.full((1, 2, 3, 3), 5.0))
    assert same_direction.item() == pytest.approx(0.0, abs=1e-7)
    e1 = torch.zeros(1, 2, 3, 3)
    e1[:, 0] = 1.0
    e2 = torch.zeros(1, 2, 3, 3)
    e2[:, 1] = 3.0
    # per position |1 - 0| + |0 - 1| over 2 channels: mean 1
    assert feature_consistency_loss(e1, e2).item() == pytest.approx(1.0)
    assert feature_consistency_loss(e1, e2, normalize=False).item() == pytest.approx(2.0)


def _numpy_correspondence(q, k, v, scale=100.0, mask_negative=False):
    """A tiny independent reference: softmax(scale * q k^T) v in float64."""
    sim = np.einsum("bnc,bmc->bnm", q.detach().double().numpy(), k.detach().double().numpy())
    if mask_negative:
        sim = np.maximum(sim, 0.0)
    logits = scale * sim
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return torch.from_numpy(weights @ v.detach().double().numpy()).to(v.dtype)


def test_cycle_loss_is_zero_for_an_exact_permutation_at_high_scale():
    torch.manual_seed(7)
    batch, positions, width = 2, 64, 32
    query = torch.nn.functional.normalize(torch.randn(batch, positions, width), dim=-1)
    permutation = torch.randperm(positions)
    key = query[:, permutation]  # exemplar position j matches condition position permutation[j]
    exemplar_values = torch.rand(batch, positions, 3) * 2 - 1
    warped = correspondence_softmax(query, key, exemplar_values, scale=100.0)
    # the warp itself is the permutation: condition position permutation[j] receives exemplar value j
    assert torch.allclose(warped[:, permutation], exemplar_values, atol=1e-5)
    loss = cycle_consistency_loss(query, key, warped, exemplar_values, scale=100.0)
    assert loss.item() < 1e-5
    assert cycle_consistency_loss(query, key, warped, exemplar_values, correspondence=_numpy_correspondence).item() < 1e-5

    # a soft correspondence (low scale) blurs the round trip, so the loss becomes clearly positive
    soft = correspondence_softmax(query, key, exemplar_values, scale=2.0)
    assert cycle_consistency_loss(query, key, soft, exemplar_values, scale=2.0).item() > 0.1


def test_cycle_loss_uses_the_transposed_softmax():
    torch.manual_seed(8)
    query = torch.nn.functional.normalize(torch.randn(1, 6, 4), dim=-1)
    key = torch.nn.functional.normalize(torch.randn(1, 5, 4), dim=-1)
    exemplar_values = torch.randn(1, 5, 3)
    warped = _numpy_correspondence(query, key, exemplar_values, scale=3.0)
    sim = (query[0] @ key[0].T).double().numpy() * 3.0  # [N, M]
    back_weights = np.exp(sim.T) / np.exp(sim.T).sum(-1, keepdims=True)  # softmax over N for each m
    expected = np.abs(back_weights @ warped[0].double().numpy() - exemplar_values[0].double().numpy()).mean()
    got = cycle_consistency_loss(query, key, warped, exemplar_values, scale=3.0, correspondence=_numpy_correspondence)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_pseudo_pair_loss_counts_only_pseudo_pairs():
    warped = torch.zeros(3, 3, 4, 4, requires_grad=True)
    target = torch.stack([torch.full((3, 4, 4), v) for v in (0.5, 9.0, 1.5)])
    assert pseudo_pair_loss(warped, target, torch.tensor([1.0, 0.0, 1.0])).item() == pytest.approx(1.0)
    assert pseudo_pair_loss(warped, target, torch.tensor([True, False, False])).item() == pytest.approx(0.5)
    none = pseudo_pair_loss(warped, target, torch.zeros(3))
    assert none.item() == 0.0 and none.requires_grad  # still part of the graph, so DDP sees every parameter


# --- warped-label loss ---------------------------------------------------------------------------


def _blocks(ids: list[list[int]], block: int = 4) -> torch.Tensor:
    """A label map with one class id per block x block square."""
    return torch.tensor(ids).repeat_interleave(block, 0).repeat_interleave(block, 1)


def test_warped_label_loss_ignores_class_zero_and_classes_absent_from_the_exemplar():
    num_classes = 4
    target = _blocks([[0, 1], [3, 1]]).unsqueeze(0)  # 8x8, classes 0, 1, 3
    exemplar = _blocks([[0, 1], [2, 2]]).unsqueeze(0)  # has 0, 1, 2 -- not 3
    warped = torch.full((1, num_classes, 2, 2), 0.25)
    warped[0, :, 0, 1] = torch.tensor([0.1, 0.6, 0.2, 0.1])  # target class 1 here: counted
    warped[0, :, 1, 1] = torch.tensor([0.1, 0.3, 0.5, 0.1])  # target class 1 here: counted
    warped[0, :, 0, 0] = torch.tensor([1e-6, 0.5, 0.4, 0.1])  # target class 0: ignored even though p is tiny
    warped[0, :, 1, 0] = torch.tensor([0.4, 0.3, 0.3, 0.0])  # target class 3, absent from exemplar: ignored
    expected = -(math.log(0.6 + 1e-10) + math.log(0.3 + 1e-10)) / 2
    assert warped_label_loss(warped, target, exemplar).item() == pytest.approx(expected, rel=1e-5)

    # with class 3 in the exemplar, its pixel counts too (and p = 0 stays finite through the 1e-10 floor)
    exemplar_with_3 = _blocks([[0, 1], [2, 3]]).unsqueeze(0)
    with_3 = warped_label_loss(warped, target, exemplar_with_3)
    assert with_3.item() == pytest.approx((2 * expected - math.log(1e-10)) / 3, rel=1e-5)


def test_warped_label_loss_per_sample_presence_and_empty_case():
    target = torch.stack([_blocks([[1, 1], [1, 1]]), _blocks([[2, 2], [2, 2]])]).unsqueeze(1)  # [B,1,H,W]
    exemplar = torch.stack([_blocks([[1, 0], [0, 0]]), _blocks([[1, 0], [0, 0]])])  # class 2 absent for sample 1
    warped = torch.full((2, 3, 2, 2), 1 / 3, requires_grad=True)
    assert warped_label_loss(warped, target, exemplar).item() == pytest.approx(math.log(3), rel=1e-5)
    nothing = warped_label_loss(warped, torch.zeros(2, 8, 8, dtype=torch.long), exemplar)
    assert nothing.item() == 0.0


# --- perceptual, contextual ----------------------------------------------------------------------


def test_perceptual_loss_by_hand():
    fake, real = torch.zeros(1, 2, 2, 2), torch.full((1, 2, 2, 2), 3.0)
    assert perceptual_loss(fake, real).item() == pytest.approx(9.0)
    assert perceptual_loss(fake, real, distance="l1").item() == pytest.approx(3.0)


def _contextual_reference(x: torch.Tensor, y: torch.Tensor, h=0.1, center="position") -> float:
    """CoCosNet's ContextualLoss_forward written out in numpy: w = exp((1 - d~)/h), A = w / sum w."""
    x, y = x.double().numpy(), y.double().numpy()
    values = []
    for xi, yi in zip(x, y):
        mean = yi.mean(axis=0, keepdims=True) if center == "position" else yi.mean(axis=(1, 2), keepdims=True)
        xs = (xi - mean).reshape(xi.shape[0], -1)
        ys = (yi - mean).reshape(yi.shape[0], -1)
        xs = xs / np.linalg.norm(xs, axis=0, keepdims=True)
        ys = ys / np.linalg.norm(ys, axis=0, keepdims=True)
        d = 1 - xs.T @ ys
        d_rel = d / (d.min(axis=1, keepdims=True) + 1e-3)
        w = np.exp((1 - d_rel) / h)
        a = w / w.sum(axis=1, keepdims=True)
        values.append(-np.log(a.max(axis=1).mean()))
    return float(np.mean(values))


@pytest.mark.parametrize("center", ["position", "spatial"])
def test_contextual_loss_against_the_reference_formula(center):
    torch.manual_seed(9)
    x, y = torch.randn(2, 16, 5, 5), torch.randn(2, 16, 5, 5)
    assert contextual_loss(x, y, center=center).item() == pytest.approx(_contextual_reference(x, y, center=center), rel=1e-4)
    if center == "spatial":  # centring by a per-channel mean also compares sets of different sizes
        y = torch.randn(2, 16, 4, 3)
    assert contextual_loss(x, y, center=center).item() == pytest.approx(_contextual_reference(x, y, center=center), rel=1e-4)


def test_contextual_loss_of_identical_sets_is_zero_and_positive_otherwise():
    torch.manual_seed(10)
    x = torch.randn(2, 64, 6, 6)
    assert contextual_loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-5)
    # the same set in another spatial order is still the same *set*
    shuffled = x.flatten(2)[:, :, torch.randperm(36)].view_as(x)
    assert contextual_loss(shuffled, x).item() == pytest.approx(0.0, abs=1e-5)
    assert contextual_loss(torch.randn(2, 64, 6, 6), x).item() > 0.1


def test_multilayer_contextual_loss_weights_and_pooling():
    torch.manual_seed(11)
    fake = [torch.randn(1, 4, 16 // 2**i, 16 // 2**i) for i in range(5)]
    exemplar = [torch.randn(1, 4, 16 // 2**i, 16 // 2**i) for i in range(5)]
    pool = torch.nn.functional.avg_pool2d
    expected = (
        8 * _contextual_reference(fake[4], exemplar[4])
        + 4 * _contextual_reference(fake[3], exemplar[3])
        + 2 * _contextual_reference(pool(fake[2], 2), pool(exemplar[2], 2))
    )
    assert multilayer_contextual_loss(fake, exemplar).item() == pytest.approx(expected, rel=1e-4)
    only_one = multilayer_contextual_loss(fake, exemplar, layers=[ContextualLayer(1, 1.0, pool=4)])
    assert only_one.item() == pytest.approx(_contextual_reference(pool(fake[1], 4), pool(exemplar[1], 4)), rel=1e-4)


# --- VGG feature matching ------------------------------------------------------------------------


def test_vgg_feature_matching_weights_and_pseudo_pair_selection():
    sizes = [(64, 8), (128, 4), (256, 2), (512, 1), (512, 1)]
    real = [torch.zeros(2, c, s, s) for c, s in sizes]
    # sample 0 (a pseudo pair) is off by 1 everywhere, sample 1 (not one) by 100
    fake = [torch.cat([torch.ones(1, c, s, s), torch.full((1, c, s, s), 100.0)]) for c, s in sizes]
    loss = vgg_feature_matching_loss(fake, real, torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx(1 / 32 + 1 / 16 + 1 / 8 + 1 / 4 + 1)
    assert losses.COCOSNET_FEATURE_MATCHING_WEIGHTS == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    both = vgg_feature_matching_loss(fake, real, torch.tensor([1.0, 1.0]))
    assert both.item() == pytest.approx(50.5 * (1 / 32 + 1 / 16 + 1 / 8 + 1 / 4 + 1))
    only_deep = vgg_feature_matching_loss(fake, real, torch.tensor([1.0, 0.0]), level_weights=(0, 0, 0, 0, 2.0))
    assert only_deep.item() == pytest.approx(2.0)


# --- adversarial ---------------------------------------------------------------------------------


def test_hinge_generator_loss_by_hand():
    scale1 = torch.tensor([[1.0, -1.0], [3.0, 1.0]])  # mean 1
    scale2 = torch.tensor([-2.0, 0.0])  # mean -1
    # -(1) and -(-1) averaged over the two scales
    assert hinge_generator_loss([scale1, scale2]).item() == pytest.approx(0.0)
    assert hinge_generator_loss([scale1]).item() == pytest.approx(-1.0)
    # the multi-scale discriminator's nested form: the last output of each scale is its logits
    nested = [[torch.full((1, 4), 7.0), scale1], [torch.full((1, 4), 7.0), scale1 * 2]]
    assert hinge_generator_loss(nested).item() == pytest.approx(-1.5)


def test_hinge_discriminator_loss_by_hand():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - x) = 0, 0.5, 2
    fake = torch.tensor([-2.0, 0.0, 1.0])  # relu(1 + x) = 0, 1, 2
    terms = hinge_discriminator_loss([real], [fake])
    assert terms.real.item() == pytest.approx(2.5 / 3)
    assert terms.fake.item() == pytest.approx(1.0)
    assert terms.total().item() == pytest.approx(2.5 / 3 + 1.0)
    two_scales = hinge_discriminator_loss([real, torch.tensor([3.0])], [fake, torch.tensor([-3.0])])
    assert two_scales.real.item() == pytest.approx(2.5 / 6)
    assert two_scales.fake.item() == pytest.approx(0.5)


def test_discriminator_feature_matching_excludes_logits_and_divides_by_scales():
    fake = [
        [torch.full((1, 2, 4, 4), 1.0), torch.full((1, 2, 2, 2), 2.0), torch.full((1, 1, 2, 2), 100.0)],
        [torch.full((1, 2, 2, 2), 3.0), torch.full((1, 1, 1, 1), -100.0)],
    ]
    real = [[torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]]
    assert discriminator_feature_matching_loss(fake, real).item() == pytest.approx((1 + 2 + 3) / 2)


# --- FSeSim -------------------------------------------------------------------------------------


def test_self_similarity_window_against_slicing():
    torch.manual_seed(12)
    feat = torch.randn(2, 5, 8, 8)
    positions = torch.tensor([0, 9, 27, 63, 7, 56])
    rows = self_similarity_rows(feat, positions, window=4)
    centred = feat - feat.mean(dim=(2, 3), keepdim=True)
    unit = centred / centred.norm(dim=1, keepdim=True)
    for s, p in enumerate(positions.tolist()):
        r, c = p // 8, p % 8
        r0, c0 = min(max(r - 2, 0), 4), min(max(c - 2, 0), 4)
        window = unit[:, :, r0 : r0 + 4, c0 : c0 + 4].flatten(2)  # [B,C,16]
        expected = torch.einsum("bc,bcp->bp", unit[:, :, r, c], window)
        assert torch.allclose(rows[:, s], expected, atol=1e-5)
    assert self_similarity_rows(feat, positions, window=8).shape == (2, 6, 64)  # no room for a window: whole map


def test_fsesim_zero_for_same_structure_positive_otherwise():
    torch.manual_seed(13)
    feat = torch.randn(1, 16, 12, 12)
    # scaling every feature by a positive factor changes appearance strength but no cosine: same structure
    assert fsesim_structure_loss(feat, 3.0 * feat, window=6, generator=_seeded()).item() == pytest.approx(0.0, abs=1e-6)
    assert fsesim_structure_loss(feat, torch.randn(1, 16, 12, 12), window=6, generator=_seeded()).item() > 0.05
