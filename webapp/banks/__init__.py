"""Vietnamese banks (the VietQR list) and the VietQR payload format."""
