//! MeCab morphological segmentation for sacrebleu's `ja-mecab` and `ko-mecab`
//! tokenizers (work in progress).
