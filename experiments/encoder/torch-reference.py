"""The embedded encoder's pretraining recipe in PyTorch, as a reference for gelora's own run (issue 18).

Question it answers: does `gelora pretrain`'s plateau (held-out MLM loss ~6.4, accuracy ~15% after
1,800 steps) come from the recipe and the compute, or from gelora's engine? Same architecture
(BERT post-LayerNorm, models/gelora-bert-6l's config, tied decoder, no dropout: gelora's BERT has
none), same packed corpus (dump-corpus.mjs writes it), same masking rule (round(p * 126) positions a
sequence, 80/10/10), same optimiser (AdamW 0.9/0.999/1e-8, decoupled weight decay on every weight,
linear warmup over floor(0.06 * steps) then linear decay, clipping at 1), same init (normal 0.02,
biases 0, norms 1). Random streams differ (numpy/torch generators), so curves compare, not digits.

Usage: python torch-reference.py DUMP OUT.json [--steps 1800] [--lr 1e-3] [--mask 0.15]
  [--eval-every 300] [--batch 32] [--threads 2] [--autocast bf16] [--prenorm]
Prints a JSON line per evaluation and writes OUT.json at the end (and after each evaluation).
"""
import argparse, json, math, os, time
import numpy as np
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('dump'); ap.add_argument('out')
ap.add_argument('--steps', type=int, default=1800); ap.add_argument('--lr', type=float, default=1e-3)
ap.add_argument('--mask', type=float, default=0.15); ap.add_argument('--eval-mask', type=float, default=0.15)
ap.add_argument('--eval-every', type=int, default=300); ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--threads', type=int, default=2); ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--autocast', choices=['none', 'bf16'], default='none')
ap.add_argument('--prenorm', action='store_true', help='pre-LayerNorm blocks (not BERT: a what-if)')
ap.add_argument('--warmup', type=float, default=0.06); ap.add_argument('--weight-decay', type=float, default=0.01)
ap.add_argument('--hidden', type=int, default=256); ap.add_argument('--layers', type=int, default=6)
ap.add_argument('--heads', type=int, default=4); ap.add_argument('--intermediate', type=int, default=1024)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

ids = json.load(open(os.path.join(a.dump, 'ids.json')))
L = ids['seq'] - 2
train = np.fromfile(os.path.join(a.dump, 'train.i32'), dtype=np.int32).reshape(-1, L)
held = np.fromfile(os.path.join(a.dump, 'heldout.i32'), dtype=np.int32).reshape(-1, L)
V, H, NH, I, T = ids['vocab'], a.hidden, a.heads, a.intermediate, L + 2
special = np.zeros(V, dtype=bool); special[ids['special']] = True


def mask_batch(chunks, p, rng):
    """[CLS] chunk [SEP] rows; round(p * L) distinct non-special positions a row, 80% [MASK], 10% random word, 10% kept."""
    B = len(chunks)
    x = np.empty((B, T), dtype=np.int64); x[:, 0] = ids['cls']; x[:, 1:-1] = chunks; x[:, -1] = ids['sep']
    pos, lab = [], []
    for b in range(B):
        cand = np.nonzero(~special[x[b, 1:-1]])[0] + 1
        k = min(len(cand), max(1, round(p * L)))
        chosen = np.sort(rng.choice(cand, size=k, replace=False))
        for t in chosen:
            pos.append(b * T + t); lab.append(x[b, t])
            r = rng.random()
            if r < 0.8: x[b, t] = ids['mask']
            elif r < 0.9: x[b, t] = ids['firstWord'] + rng.integers(V - ids['firstWord'])
    return torch.from_numpy(x), torch.tensor(pos), torch.tensor(lab)


class Block(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.qkv = torch.nn.Linear(H, 3 * H); s.o = torch.nn.Linear(H, H); s.ln1 = torch.nn.LayerNorm(H, eps=1e-12)
        s.fc1 = torch.nn.Linear(H, I); s.fc2 = torch.nn.Linear(I, H); s.ln2 = torch.nn.LayerNorm(H, eps=1e-12)

    def attn(s, x):
        B = x.shape[0]
        q, k, v = s.qkv(x).view(B, T, 3, NH, H // NH).permute(2, 0, 3, 1, 4)
        return s.o(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, H))

    def forward(s, x):
        if a.prenorm:
            x = x + s.attn(s.ln1(x))
            return x + s.fc2(F.gelu(s.fc1(s.ln2(x))))
        x = s.ln1(x + s.attn(x))  # BERT: post-LayerNorm
        return s.ln2(x + s.fc2(F.gelu(s.fc1(x))))


class Bert(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.word = torch.nn.Embedding(V, H); s.pos = torch.nn.Embedding(T, H); s.tok_type = torch.nn.Embedding(2, H)
        s.ln = torch.nn.LayerNorm(H, eps=1e-12); s.blocks = torch.nn.ModuleList(Block() for _ in range(a.layers))
        s.final = torch.nn.LayerNorm(H, eps=1e-12) if a.prenorm else torch.nn.Identity()
        s.dense = torch.nn.Linear(H, H); s.hln = torch.nn.LayerNorm(H, eps=1e-12); s.bias = torch.nn.Parameter(torch.zeros(V))
        for n, p in s.named_parameters():
            if 'ln' in n and n.endswith('weight'): torch.nn.init.ones_(p)
            elif p.ndim == 1: torch.nn.init.zeros_(p)
            else: torch.nn.init.normal_(p, 0, 0.02)

    def forward(s, x, pos):
        h = s.ln(s.word(x) + s.pos.weight[None, :T] + s.tok_type.weight[0])
        for blk in s.blocks: h = blk(h)
        rows = s.final(h).reshape(-1, H)[pos]
        return s.hln(F.gelu(s.dense(rows))) @ s.word.weight.T + s.bias  # decoder tied to the word embeddings


model = Bert()
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
warm = math.floor(a.warmup * a.steps)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / warm if s < warm else max(0.0, (a.steps - s) / (a.steps - warm)))


def autocast():
    return torch.autocast('cpu', dtype=torch.bfloat16) if a.autocast == 'bf16' else torch.autocast('cpu', enabled=False)


def evaluate():
    rng = np.random.default_rng(12345); loss = correct = n = 0
    model.eval()
    with torch.no_grad(), autocast():
        for s in range(0, len(held), a.batch):
            x, pos, lab = mask_batch(held[s:s + a.batch], a.eval_mask, rng)
            logits = model(x, pos).float()
            loss += F.cross_entropy(logits, lab, reduction='sum').item(); correct += (logits.argmax(1) == lab).sum().item(); n += len(lab)
    model.train()
    return loss / n, correct / n


rng = np.random.default_rng(a.seed)
per_epoch = len(train) // a.batch
history, losses, t0, step = [], [], time.time(), 0
result = {'config': vars(a), 'sequences': len(train), 'held_out_sequences': len(held), 'torch': torch.__version__, 'history': history}
while step < a.steps:
    order = rng.permutation(len(train))
    for b in range(per_epoch):
        if step >= a.steps: break
        x, pos, lab = mask_batch(train[order[b * a.batch:(b + 1) * a.batch]], a.mask, rng)
        with autocast():
            loss = F.cross_entropy(model(x, pos).float(), lab)
        if not torch.isfinite(loss): raise SystemExit(f'step {step + 1}: loss is {loss.item()}')
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); sched.step(); step += 1; losses.append(loss.item())
        if step % a.eval_every == 0 or step == a.steps:
            el, ea = evaluate()
            history.append({'step': step, 'train_loss_last100': float(np.mean(losses[-100:])), 'heldout_loss': el, 'heldout_accuracy': ea, 'seconds': time.time() - t0})
            print(json.dumps(history[-1]), flush=True)
            result['seconds'] = time.time() - t0
            tmp = a.out + '.tmp'; json.dump(result, open(tmp, 'w'), indent=1); os.replace(tmp, a.out)
