"""One metric per module. The pixel metrics (l1, psnr, ssim) take RGB uint8 [H, W, 3] pairs and need
no torch; the feature metrics (FID, KID, LPIPS, ...) import torch when called."""
