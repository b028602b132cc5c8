format 128x72 @ 12fps @ 24fps
style "ink"
style "watercolor"
character MARA
  look "a"
  look "b"
EXT. A - DAY
  shot 1 close on MARA 2s
    steps 10
    steps 20
    lora "a.safetensors"
    lora "b.safetensors"
