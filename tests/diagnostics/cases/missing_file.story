include "bibel.story"

character MARA
  reference "refs/mara.png"
