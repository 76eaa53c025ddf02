import sys

from ar_pipeline.sources.alga_fixture import main

sys.exit(main(sys.argv[1:]))
