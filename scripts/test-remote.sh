#!/usr/bin/env bash
# `npm run test:remote`: the transport, state and integration suites against a real SQS
# endpoint and a real DynamoDB endpoint instead of the in-process emulators.
#
#   SQS_ENDPOINT=http://127.0.0.1:4566 npm run test:remote   # LocalStack (SQS and DynamoDB)
#   AWS_REGION=eu-west-1 npm run test:remote                 # AWS, default credential chain
#
# DYNAMODB_ENDPOINT defaults to SQS_ENDPOINT for a local endpoint (LocalStack serves both)
# and to the regional endpoint on AWS; set it to use another one (DynamoDB Local).
# Every suite creates its own uniquely prefixed queues and state tables (queues are deleted
# when done; the small tables are left for the caller to delete).
# Extra arguments go to vitest (e.g. `npm run test:remote -- -t redrive`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SQS_ENDPOINT:-}" ]; then
  if [ -z "${AWS_REGION:-}" ]; then
    echo "test:remote: set SQS_ENDPOINT (LocalStack, an emulator) or AWS_REGION (AWS)" >&2
    exit 2
  fi
  if ! [[ "$AWS_REGION" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]]; then
    echo "test:remote: AWS_REGION: expected a region like eu-west-1, got \"$AWS_REGION\"" >&2
    exit 2
  fi
  # The test helper uses SQS_ENDPOINT when set; for AWS that is the regional endpoint.
  export SQS_ENDPOINT="https://sqs.${AWS_REGION}.amazonaws.com"
  export DYNAMODB_ENDPOINT="${DYNAMODB_ENDPOINT:-https://dynamodb.${AWS_REGION}.amazonaws.com}"
fi
if ! [[ "$SQS_ENDPOINT" =~ ^https?://[^/]+ ]]; then
  echo "test:remote: SQS_ENDPOINT: expected an http(s) URL, got \"$SQS_ENDPOINT\"" >&2
  exit 2
fi
export AWS_REGION="${AWS_REGION:-us-east-1}"
export DYNAMODB_ENDPOINT="${DYNAMODB_ENDPOINT:-$SQS_ENDPOINT}"
if ! [[ "$DYNAMODB_ENDPOINT" =~ ^https?://[^/]+ ]]; then
  echo "test:remote: DYNAMODB_ENDPOINT: expected an http(s) URL, got \"$DYNAMODB_ENDPOINT\"" >&2
  exit 2
fi

case "$SQS_ENDPOINT" in
  https://sqs.*.amazonaws.com*) ;;
  *)
    # Local endpoints accept any credentials; without some the SDK would go looking.
    if [ -z "${AWS_ACCESS_KEY_ID:-}" ] && [ -z "${AWS_PROFILE:-}" ]; then
      export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
    fi
    ;;
esac

# Fail fast, with one clear line, when nothing answers there (any HTTP answer will do).
if ! node -e "fetch(process.env.SQS_ENDPOINT,{signal:AbortSignal.timeout(5000)}).then(()=>process.exit(0),()=>process.exit(1))"; then
  echo "test:remote: no answer from SQS_ENDPOINT $SQS_ENDPOINT (is LocalStack running?)" >&2
  exit 2
fi

echo "test:remote: SQS_ENDPOINT=$SQS_ENDPOINT DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT AWS_REGION=$AWS_REGION" >&2
exec npx vitest run test/core/transport test/core/state test/integration "$@"
