export PYTHONPATH=/root/gpusite:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export TOKENIZERS_PARALLELISM=false
SETS=(--set model.name=smollm2-135m-instruct
      --set 'data.sources=[project:general,project:function_calling,project:reading_qa,project:arithmetic]'
      --set data.limit=400)
stamp() { echo "=== $(date -u +%H:%M:%S) $*"; }
