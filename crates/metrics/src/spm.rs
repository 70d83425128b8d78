//! SentencePiece segmentation for sacrebleu's `spm`/`flores101`, `flores200` and
//! `spBLEU-1K` tokenizers (work in progress).
