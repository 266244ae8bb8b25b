#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""torch_zoo.py -- DCN and xDeepFM for the PyTorch reference (../shared/bench/torch_ref.py).

torch_ref.py has dnn, deepfm, widedeep, din, ameir-ctr and ameir-seq but no DCN and no xDeepFM.
This file adds the two WITHOUT copying torch_ref: it imports it and reuses its data loading
(every --format and --split), training loop (Adam, no shuffling, same batches), evaluation,
timing and its one-line JSON output. Only the model is new:

    /usr/bin/python3 bench/torch_zoo.py --model dcn     [--cross-layers 3]   <torch_ref options>
    /usr/bin/python3 bench/torch_zoo.py --model xdeepfm [--cin 128,128]      <torch_ref options>
    /usr/bin/python3 bench/torch_zoo.py --zoo-selftest      # checks of the two models, {"zoo_selftest": ...}

Every other --model is passed through to torch_ref unchanged. torch_ref is found in the folder
$AMEIR_REF_DIR, else the folder of $AMEIR_REF (the path of torch_ref.py, as bench/*.sh use it),
else ../shared/bench relative to the repository (this file's parent's parent).

Models (both take the field embeddings exactly as torch_ref's DNNFamily builds them: one table,
N(0, --init-std) rows, row 0 the zero padding row; univalent lookups, multivalent fields summed,
each behaviour field sum-pooled as one more field; F fields of dimension K = --emb):

  dcn      Deep & Cross (Wang et al. 2017).
           x0 = [e_1, ..., e_F (flattened, F*K), dense]  (D0 = F*K + n_dense)
           cross network, --cross-layers L (default 3):
               x_{l+1} = x0 * (x_l . w_l) + b_l + x_l,   w_l ~ N(0, std = sqrt(2/(D0+1))), b_l = 0
           deep part = torch_ref's MLP (--mlp) over x0
           logit = Linear([h_mlp, x_L]) (one output layer over the concatenation, with bias,
           PyTorch's default init). No FM term, no first-order term.
  xdeepfm  xDeepFM (Lian et al. 2018).
           CIN over X0 = the F field embeddings (B, F, K) (dense features are not in the CIN),
           --cin 'H1,H2,...' (default 128,128):
               X^k[b,h,:] = sum_{i<H_{k-1}, j<F} W^k[h, i*F+j] * X^{k-1}[b,i,:] * X0[b,j,:]
           no activation, no bias, no split-half; W^k ~ U(+-sqrt(6/(H_{k-1}*F + H_k))) (Glorot);
           p^k[b,h] = sum over the K dimensions of X^k[b,h,:].
           MLP (--mlp) over [e flattened, dense] as for dnn.
           logit = w_mlp^T h_mlp + w_cin^T [p^1, ..., p^L] + first-order term + one bias, where
           (w_mlp, w_cin, bias) is one output layer over [h_mlp, p] (PyTorch's default init) and the
           first-order term is torch_ref's deepfm/widedeep `linear` part (a 1-wide per-id table and
           a Linear over the dense features, all zero-initialised).
           The CIN is computed with broadcasting and one batched matmul per layer (no row loops).
"""
import argparse
import os
import sys
import types


def _ref_dir():
    d = os.environ.get('AMEIR_REF_DIR')
    if not d and os.environ.get('AMEIR_REF'):
        d = os.path.dirname(os.path.abspath(os.environ['AMEIR_REF']))
    if not d:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        d = os.path.join(repo, '..', 'shared', 'bench')
    return os.path.abspath(d)


sys.path.insert(0, _ref_dir())
import torch_ref  # noqa: E402  (the PyTorch reference; reused, not copied)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

ZOO_MODELS = ['dcn', 'xdeepfm']


# ----------------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------------

def _field_matrix(emb, b):
    """(B, F, K): torch_ref's DNNFamily field embeddings (behaviour fields sum-pooled, pads = 0)."""
    e = torch_ref.field_embeddings(emb, b)
    if 'seq' in b:
        e = torch.cat([e, emb(b['seq']).sum(1)], 1)
    return e


def _x0(e, b):
    h = e.flatten(1)
    if 'dense' in b:
        h = torch.cat([h, b['dense']], 1)
    return h


class CrossNet(nn.Module):
    """x_{l+1} = x0 * (x_l . w_l) + b_l + x_l."""

    def __init__(self, d0, layers):
        super().__init__()
        std = (2.0 / (d0 + 1)) ** 0.5
        self.w = nn.ParameterList([nn.Parameter(torch.randn(d0) * std) for _ in range(layers)])
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(d0)) for _ in range(layers)])

    def forward(self, x0):
        x = x0
        for w, b in zip(self.w, self.b):
            x = x0 * (x @ w).unsqueeze(1) + b + x
        return x


class DCN(torch_ref.DNNFamily):
    """torch_ref's dnn (embeddings, MLP over x0) + a cross network; one output layer over both."""

    def __init__(self, meta, args):
        super().__init__(meta, args)
        nf = meta['n_uni'] + meta['n_multi'] + meta['n_seq_fields']
        d0 = nf * args.emb + meta['n_dense']
        self.cross = CrossNet(d0, args.cross_layers)
        self.out = nn.Linear(self.mlp.out_dim + d0, 1)

    def forward(self, b):
        x0 = _x0(_field_matrix(self.emb, b), b)
        return self.out(torch.cat([self.mlp(x0), self.cross(x0)], 1)).squeeze(1)


def parse_cin(spec):
    out = [int(s) for s in str(spec).replace(' ', '').split(',') if s]
    if not out or min(out) < 1:
        raise SystemExit('--cin: comma-separated positive layer sizes, got %r' % spec)
    return out


class CIN(nn.Module):
    """Compressed interaction network: X^k = W^k (X^{k-1} outer X0) per embedding dimension."""

    def __init__(self, n_fields, sizes):
        super().__init__()
        self.W = nn.ParameterList()
        h_prev = n_fields
        for h in sizes:
            fan_in = h_prev * n_fields
            bound = (6.0 / (fan_in + h)) ** 0.5
            self.W.append(nn.Parameter(torch.empty(h, fan_in).uniform_(-bound, bound)))
            h_prev = h
        self.out_dim = sum(sizes)

    def forward(self, x0):                              # x0: (B, F, K)
        B, Fn, K = x0.shape
        x, ps = x0, []
        for W in self.W:
            z = (x.unsqueeze(2) * x0.unsqueeze(1)).reshape(B, x.shape[1] * Fn, K)   # z[b, i*F+j, :]
            x = torch.matmul(W, z)                      # (B, H_k, K)
            ps.append(x.sum(2))
        return torch.cat(ps, 1)


class XDeepFM(torch_ref.DNNFamily):
    """torch_ref's widedeep (embeddings, MLP, zero-initialised first-order term) + a CIN."""

    def __init__(self, meta, args):
        super().__init__(meta, args, fm=False, linear=True)
        nf = meta['n_uni'] + meta['n_multi'] + meta['n_seq_fields']
        self.cin = CIN(nf, parse_cin(args.cin))
        self.out = nn.Linear(self.mlp.out_dim + self.cin.out_dim, 1)

    def first_order(self, b):
        first = self.lin(b['cat']).sum((1, 2))
        if 'multi' in b:
            first = first + self.lin(b['multi']).sum((1, 2, 3))
        if 'seq' in b:
            first = first + self.lin(b['seq']).sum((1, 2, 3))
        if self.dense_lin is not None:
            first = first + self.dense_lin(b['dense']).squeeze(1)
        return first

    def forward(self, b):
        e = _field_matrix(self.emb, b)
        h = torch.cat([self.mlp(_x0(e, b)), self.cin(e)], 1)
        return self.out(h).squeeze(1) + self.first_order(b)


# ----------------------------------------------------------------------------------------------
# hooks into torch_ref: the --model choices, two options, build_model
# ----------------------------------------------------------------------------------------------

_ref_build_model = torch_ref.build_model


def build_model(args, meta):
    if args.model not in ZOO_MODELS:
        return _ref_build_model(args, meta)
    if meta['kind'] != 'ctr':
        raise SystemExit('%s needs labelled CTR data' % args.model)
    return DCN(meta, args) if args.model == 'dcn' else XDeepFM(meta, args)


class _ZooParser(argparse.ArgumentParser):
    """torch_ref's parser with dcn/xdeepfm among the --model choices and their two options."""

    def add_argument(self, *a, **kw):
        if a and a[0] == '--model' and 'choices' in kw:
            kw['choices'] = list(kw['choices']) + ZOO_MODELS
        return super().add_argument(*a, **kw)

    def parse_args(self, args=None, namespace=None):
        if not getattr(self, '_zoo_added', False):
            self._zoo_added = True
            super().add_argument('--cross-layers', type=int, default=3, help='dcn: cross layers')
            super().add_argument('--cin', default='128,128', help='xdeepfm: CIN layer sizes')
        return super().parse_args(args, namespace)


def install():
    proxy = types.ModuleType('argparse')
    proxy.__dict__.update(argparse.__dict__)
    proxy.ArgumentParser = _ZooParser
    torch_ref.argparse = proxy          # only torch_ref's view of argparse changes
    torch_ref.build_model = build_model


# ----------------------------------------------------------------------------------------------
# self test: brute-force formulas, gradients, padding, a few training steps
# ----------------------------------------------------------------------------------------------

def zoo_selftest():
    import json
    import torch.nn.functional as F
    torch.manual_seed(0)
    ok = True

    def check(name, cond, detail=''):
        nonlocal ok
        ok &= bool(cond)
        print('[torch_zoo] %-56s %s %s' % (name, 'ok' if cond else 'FAIL', detail), file=sys.stderr)

    # cross network == the loop over rows
    d0 = 7
    cn = CrossNet(d0, 3)
    with torch.no_grad():
        for b in cn.b:
            b.normal_()
    x0 = torch.randn(5, d0)
    got = cn(x0)
    ref = []
    for r in range(5):
        x = x0[r].clone()
        for w, b in zip(cn.w, cn.b):
            x = x0[r] * float(x @ w) + b + x
        ref.append(x)
    check('cross network == per-row formula', torch.allclose(got, torch.stack(ref), atol=1e-5),
          '%.1e' % (got - torch.stack(ref)).abs().max().item())
    check('cross w std ~ sqrt(2/(D0+1))',
          abs(CrossNet(999, 1).w[0].std().item() - (2 / 1000) ** 0.5) < 0.005)
    # CIN == the triple loop of the definition
    Fn, K, sizes = 4, 3, [5, 2]
    cin = CIN(Fn, sizes)
    X0 = torch.randn(2, Fn, K)
    got = cin(X0)
    ref = torch.zeros(2, sum(sizes))
    for bi in range(2):
        xp, off = X0[bi], 0
        for W in cin.W:
            H = W.shape[0]
            xk = torch.zeros(H, K)
            for h in range(H):
                for i in range(xp.shape[0]):
                    for j in range(Fn):
                        xk[h] += W[h, i * Fn + j] * xp[i] * X0[bi, j]
            ref[bi, off:off + H] = xk.sum(1)
            xp, off = xk, off + H
    check('CIN == sum_ij W[h,i*F+j] X^{k-1}_i * X0_j, p = sum_K', torch.allclose(got, ref, atol=1e-4),
          '%.1e' % (got - ref).abs().max().item())
    bnd = (6.0 / (128 * 10 + 128)) ** 0.5
    W = CIN(10, [128, 128]).W[1]
    check('CIN W^2 glorot-uniform bound', W.abs().max().item() <= bnd and W.abs().max().item() > 0.95 * bnd)
    # both models: gradients reach every parameter, outputs do not depend on sequence padding
    meta = {'kind': 'ctr', 'total_vocab': 50, 'n_uni': 3, 'n_multi': 1, 'n_seq_fields': 2, 'n_dense': 2}
    a = argparse.Namespace(emb=4, mlp='16:relu,8:relu', sparse=False, init_std=0.01, cross_layers=2,
                           cin='6,5')
    L = torch.tensor([3, 7, 1, 5, 2, 4])
    seq = torch.randint(1, 50, (6, 9, 2)) * (torch.arange(9)[None, :, None] < L[:, None, None])
    b = {'cat': torch.randint(1, 50, (6, 3)), 'multi': torch.randint(0, 50, (6, 1, 2)), 'seq': seq,
         'seq_len': L, 'dense': torch.randn(6, 2), 'y': torch.tensor([1., 0, 1, 0, 1, 0])}
    for name, cls in (('dcn', DCN), ('xdeepfm', XDeepFM)):
        m = cls(meta, a)
        F.binary_cross_entropy_with_logits(m(b), b['y']).backward()
        missing = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
        check('%s: every parameter gets a gradient' % name, not missing, str(missing))
        m.eval()
        o1, o2 = m(dict(b, seq=seq[:, :7])), m(dict(b, seq=seq))
        check('%s: padding invariance' % name, torch.allclose(o1, o2, atol=1e-6))
    print(json.dumps({'zoo_selftest': 'pass' if ok else 'FAIL'}))
    return 0 if ok else 1


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if '--zoo-selftest' in argv:
        return zoo_selftest()
    install()
    return torch_ref.main(argv)


if __name__ == '__main__':
    sys.exit(main())
