// One evolving take written as four shots: each shot's words move the picture on, and `> continue`
// makes every shot start on the last frame of the one before (on ComfyUI: a FLUX still, then Wan 2.2
// image to video from frame to frame). As an animatic it plays as four cards cut together.

title "High Tide" 2s
format 1280x720 @ 24fps
style "painterly, late afternoon light"
model "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"
start still "flux1-dev-fp8.safetensors"

EXT. HARBOUR WALL - AFTERNOON
  shot 1 wide 3s
    camera push in slow
    action "the tide creeps up the harbour steps"
    narrate "The water came in the way it always had."
  > continue
  shot 2 wide 3s
    camera push in slow
    action "the water covers the lowest step, a rope floats loose"
  > continue
  shot 3 medium 3s
    camera push in slow
    action "the rope drifts towards a small red boat"
  > continue
  shot 4 close 3s
    camera push in slow
    action "the rope wraps around the boat's bow"
    narrate "And took what it was given."
