# session 14, call 1: the first half of the embedded model kept outside the repo copy; gguf; eval speed on the random 1B shape
# run as: bash call1.sh 180
source .gpu-carry/run/env.sh
cp .gpu-carry/gg1/gg_00 /root/gg_00 && ls -la /root/gg_00
bash .gpu-carry/run/install.sh .gpu-carry/g
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader | tee $OUT/env.txt
python3 -c "import sys,torch,transformers,peft,gguf; print(sys.version.split()[0], torch.__version__, transformers.__version__, peft.__version__, 'gguf', gguf.__version__ if hasattr(gguf,'__version__') else 'ok')" | tee -a $OUT/env.txt
cat .gpu-carry/run/commit.txt | tee -a $OUT/env.txt
stamp eval_speed 1b
timeout ${1:-200} python3 -m benchmarks.eval_speed --models llama-3.2-1b-random --tokenizer .gpu-carry/tok --paths batched,continuous 2>&1 | tr "\r" "\n" | grep --line-buffered -v -E "it/s\]|s/it\]" | tee $OUT/eval_speed_1b.log
stamp done
