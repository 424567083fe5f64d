"""A language model fed token ids, measured (printed, not asserted): pre-LN against post-LN transformers at init.

Each network is token and learned position embeddings, ``--depth`` ``nn.TransformerEncoderLayer`` layers (width
``--width``, 4 heads, feed-forward 4 x width, no dropout; ``norm_first`` for pre-LN, which ends with a LayerNorm),
and a linear head over the vocabulary, fed ``--batch`` sequences of ``--length`` random token ids.
``measure_model`` measures it as it is: x^0 is the token embedding's output (its first ``nn.Embedding``), x^l the
output of layer l (found: ``nn.TransformerEncoder`` keeps its layers in an ``nn.ModuleList``), x^L the
logits. Printed per layer: log GSC(l, L) = log(‖J‖_qm ‖x^l‖/‖x^L‖) (Philipp, Song & Carbonell 2018) and
the gradient correlation across inputs (Balduzzi et al. 2017), means over --seeds networks with 95% intervals.
Post-LN normalizes after every residual addition, pre-LN keeps an identity path from every layer to the last
(Xiong et al. 2020, On Layer Normalization in the Transformer Architecture, compare the two at initialization).

``--padding K``: the last K positions of every other sequence are padding, masked in attention; the model is then
fed ``{"ids": ids, "padding": mask}`` by keyword, as a tokenizer's output is.

Cost: the seconds ``measure_model`` takes (every layer, the default 8 Hutchinson probes) against the plain way:
make the same networks, embed the same ids and pull 8 probes back to the embedding's output with
``torch.func.vmap`` over ``torch.func.vjp``, timed with torch's default attention kernels and with its math
implementation (which ``measure_model`` runs: the fused kernels' backward has no batching rule, so under vmap it
runs once per probe), the ratio taken to the faster; medians of --repeats runs after a warm-up run, on --device.

Run: python benchmarks/bench_language_model.py [--depth 6] [--width 128] [--length 32] [--batch 8] [--seeds 6]
[--repeats 3] [--padding 0] [--device cpu]
"""
import argparse

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from bench_measure import timed
from sigprop.validate import measure_model


class LanguageModel(nn.Module):
    def __init__(self, vocab, width, depth, length, pre_ln):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(0.02 * torch.randn(length, width))
        layer = nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.0, batch_first=True, norm_first=pre_ln)
        self.encoder = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(width) if pre_ln else None,
                                             enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab)

    def from_embedding(self, e, padding=None):
        return self.head(self.encoder(e + self.pos[:e.shape[-2]], src_key_padding_mask=padding))

    def forward(self, ids, padding=None):
        return self.from_embedding(self.tok(ids), padding)


def plain(factory, feed, seeds, probes, attention=None):
    """Make each network, embed the ids, pull ``probes`` Gaussian probes back to the embedding with vmap over vjp
    (the probes drawn on the CPU, as sigprop draws them, and moved); ``attention``: the one
    ``scaled_dot_product_attention`` implementation to run (None: torch's choice)."""
    if attention is not None:
        with sdpa_kernel(attention):
            return plain(factory, feed, seeds, probes)
    total = 0.0
    for seed in range(seeds):
        torch.manual_seed(seed)
        net = factory(seed)
        with torch.no_grad():
            e = net.tok(feed["ids"])
        out, pull = torch.func.vjp(lambda x: net.from_embedding(x, feed.get("padding")), e)
        v = torch.randn((probes, *out.shape), generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
        (g,) = torch.func.vmap(pull)(v.to(out.device))
        total += float((g * g).sum().detach())
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--length", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--padding", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    ids = torch.randint(args.vocab, (args.batch, args.length), generator=torch.Generator().manual_seed(0))
    ids = ids.to(args.device)
    feed = {"ids": ids}
    if args.padding:
        feed["padding"] = torch.zeros(ids.shape, dtype=torch.bool, device=args.device)
        feed["padding"][::2, args.length - args.padding:] = True
    inputs = feed if args.padding else ids
    print(f"{args.depth} layers, width {args.width}, {args.batch} sequences of {args.length} tokens"
          f"{f' (every other one with {args.padding} padded)' if args.padding else ''}, "
          f"{args.seeds} networks, float64, on {args.device} ({torch.get_num_threads()} CPU threads)")
    rows = {}
    for name, pre_ln in (("pre-LN", True), ("post-LN", False)):
        factory = lambda seed, pre_ln=pre_ln: LanguageModel(args.vocab, args.width, args.depth, args.length,
                                                            pre_ln).to(args.device)
        meas = measure_model(factory, inputs, seeds=args.seeds)
        assert meas.meta["observe"] == [f"encoder.layers.{i}" for i in range(args.depth)], meas.meta["observe"]
        t_model = timed(lambda: measure_model(factory, inputs, seeds=args.seeds), args.device, args.repeats)
        t_plain = timed(lambda: plain(factory, feed, args.seeds, 8), args.device, args.repeats)
        t_math = timed(lambda: plain(factory, feed, args.seeds, 8, SDPBackend.MATH), args.device, args.repeats)
        print(f"{name}: start {meas.meta['start']!r}, measure_model {t_model:.2f} s ({meas.meta['seeds_per_batch']} "
              f"per batch, {meas.meta['bytes_per_seed'] / 2**20:.0f} MiB per network), plain {t_plain:.2f} s "
              f"(math attention {t_math:.2f} s), ratio {t_model / min(t_plain, t_math):.2f}")
        rows[name] = meas.summary()
    print(f"\n{'layer':>5s}  " + "  ".join(f"{n + ' log GSC(l, L)':>30s}  {n + ' grad corr':>26s}" for n in rows))
    for layer in range(args.depth + 2):
        cells = []
        for s in rows.values():
            g, c = s["log_gsc"], s["grad_corr"]
            cells.append(f"{g['mean'][layer]:>8.3f} [{g['lo'][layer]:>7.3f}, {g['hi'][layer]:>7.3f}]      "
                         f"{c['mean'][layer]:>6.3f} [{c['lo'][layer]:>6.3f}, {c['hi'][layer]:>6.3f}]")
        print(f"{layer:>5d}  " + "  ".join(f"{cell:>58s}" for cell in cells))
    print("\nlayer 0 is the token embedding's output, 1..depth the layers' outputs, the last the logits")


if __name__ == "__main__":
    main()
