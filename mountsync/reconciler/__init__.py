"""Write-back queue and workers that carry journal items to the bucket."""
