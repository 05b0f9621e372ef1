"""Software mock cards (CPS, CPE, Vitale), their test PKI, and the glue that serves them to
pcscd through vpcd. Test and demo material only: every key and PIN here is public."""
