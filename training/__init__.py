"""Repository adapters: git history -> FIM dataset -> LoRA -> evaluation gate -> export."""
