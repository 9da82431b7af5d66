import torch

from nerfhead.field.sh import sh_encode


def test_sh_orthonormal_on_the_sphere():
    torch.manual_seed(0)
    d = torch.randn(200000, 3, dtype=torch.float64)
    d = d / d.norm(dim=-1, keepdim=True)
    y = sh_encode(d)
    gram = 4 * torch.pi * (y.T @ y) / len(d)  # Monte Carlo integral over the sphere
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=0.03)
