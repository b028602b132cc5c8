include "include_cycle.story"
